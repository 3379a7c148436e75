;; Imports a host function the ABI does not offer.
(module
  (import "mesher" "abi_v1" (func $abi_v1))
  (import "env" "http_get" (func $http_get (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "mesher_process") (param i32 i32) (result i32) (i32.const 0)))
