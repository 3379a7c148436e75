;; Reports failure through its return value on a non-empty batch.
(module
  (import "mesher" "abi_v1" (func $abi_v1))
  (import "mesher" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "cannot process this batch")
  (func (export "mesher_process") (param $count i32) (param $size i32) (result i32)
    (if (i32.eqz (local.get $count)) (then (return (i32.const 0))))
    (call $log (i32.const 3) (i32.const 0) (i32.const 25))
    (i32.const 7)))
