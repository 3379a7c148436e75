;; Hostile: emits the same 1 MiB record (event 0 with a 1 MiB body) over and
;; over on a non-empty batch.
(module
  (import "mesher" "abi_v1" (func $abi_v1))
  (import "mesher" "emit" (func $emit (param i32 i32) (result i32)))
  (memory (export "memory") 17)
  ;; index 0, size 1048568, field type 1 (event) of 1048563 bytes
  (data (i32.const 0) "\00\00\00\00" "\f8\ff\0f\00" "\01" "\f3\ff\0f\00")
  (func (export "mesher_process") (param $count i32) (param $size i32) (result i32)
    (if (i32.eqz (local.get $count)) (then (return (i32.const 0))))
    (loop $again
      (drop (call $emit (i32.const 0) (i32.const 1048576)))
      (br $again))
    (i32.const 0)))
