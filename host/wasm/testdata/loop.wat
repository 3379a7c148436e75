;; Hostile: spins forever on any non-empty batch.
(module
  (import "mesher" "abi_v1" (func $abi_v1))
  (memory (export "memory") 1)
  (func (export "mesher_process") (param $count i32) (param $size i32) (result i32)
    (if (i32.eqz (local.get $count)) (then (return (i32.const 0))))
    (loop $forever (br $forever))
    (i32.const 0)))
