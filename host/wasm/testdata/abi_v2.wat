;; Built for a future ABI: the host must refuse it at load time.
(module
  (import "mesher" "abi_v2" (func $abi_v2))
  (memory (export "memory") 1)
  (func (export "mesher_process") (param i32 i32) (result i32) (i32.const 0)))
