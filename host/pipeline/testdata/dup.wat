;; Fans every event out into two: the original, kept, and a copy with the
;; fingerprint "dup".
(module
  (import "mesher" "abi_v1" (func $abi_v1))
  (import "mesher" "emit" (func $emit (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  ;; keep record: index, size 0; then copy record: index, size 8, fingerprint "dup"
  (data (i32.const 0) "\00\00\00\00" "\00\00\00\00" "\00\00\00\00" "\08\00\00\00" "\02" "\03\00\00\00" "dup")
  (func (export "mesher_process") (param $count i32) (param $size i32) (result i32)
    (local $i i32)
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $count)))
        (i32.store (i32.const 0) (local.get $i))
        (i32.store (i32.const 8) (local.get $i))
        (drop (call $emit (i32.const 0) (i32.const 24)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (i32.const 0)))
