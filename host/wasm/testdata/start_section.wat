;; Has a start function, which would run before the host can bound it.
(module
  (import "mesher" "abi_v1" (func $abi_v1))
  (memory (export "memory") 1)
  (func $init (loop $l (br $l)))
  (start $init)
  (func (export "mesher_process") (param i32 i32) (result i32) (i32.const 0)))
