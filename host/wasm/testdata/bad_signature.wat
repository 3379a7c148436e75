;; Imports mesher.emit with the wrong type.
(module
  (import "mesher" "abi_v1" (func $abi_v1))
  (import "mesher" "emit" (func $emit (param i64) (result i32)))
  (memory (export "memory") 1)
  (func (export "mesher_process") (param i32 i32) (result i32) (i32.const 0)))
