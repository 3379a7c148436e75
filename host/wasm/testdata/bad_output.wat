;; Emits a record for event 7 whatever the batch size.
(module
  (import "mesher" "abi_v1" (func $abi_v1))
  (import "mesher" "emit" (func $emit (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "\07\00\00\00\00\00\00\00")
  (func (export "mesher_process") (param $count i32) (param $size i32) (result i32)
    (if (i32.eqz (local.get $count)) (then (return (i32.const 0))))
    (drop (call $emit (i32.const 0) (i32.const 8)))
    (i32.const 0)))
