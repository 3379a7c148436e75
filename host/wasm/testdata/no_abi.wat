;; A plain module that never heard of Mesher.
(module
  (memory (export "memory") 1)
  (func (export "mesher_process") (param i32 i32) (result i32) (i32.const 0)))
