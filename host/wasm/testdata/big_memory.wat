;; Asks for 128 MiB of initial memory, above the default 64 MiB cap.
(module
  (import "mesher" "abi_v1" (func $abi_v1))
  (memory (export "memory") 2048)
  (func (export "mesher_process") (param i32 i32) (result i32) (i32.const 0)))
