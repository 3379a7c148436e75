;; Hostile: emits 1 MiB of zero bytes (each 8 zero bytes is a valid "keep
;; event 0" record, so 131072 records) over and over: a fan-out bomb.
(module
  (import "mesher" "abi_v1" (func $abi_v1))
  (import "mesher" "emit" (func $emit (param i32 i32) (result i32)))
  (memory (export "memory") 17)
  (func (export "mesher_process") (param $count i32) (param $size i32) (result i32)
    (if (i32.eqz (local.get $count)) (then (return (i32.const 0))))
    (loop $again
      (drop (call $emit (i32.const 0) (i32.const 1048576)))
      (br $again))
    (i32.const 0)))
