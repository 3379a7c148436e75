;; Hostile: divides by zero on any non-empty batch.
(module
  (import "mesher" "abi_v1" (func $abi_v1))
  (memory (export "memory") 1)
  (func (export "mesher_process") (param $count i32) (param $size i32) (result i32)
    (if (i32.eqz (local.get $count)) (then (return (i32.const 0))))
    (drop (i32.div_u (i32.const 1) (i32.sub (local.get $count) (local.get $count))))
    (i32.const 0)))
