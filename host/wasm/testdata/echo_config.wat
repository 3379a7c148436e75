;; Reads config key "title" and sets it as the title of every event. Reads
;; the host clock too, so every ABI host function is exercised.
(module
  (import "mesher" "abi_v1" (func $abi_v1))
  (import "mesher" "config" (func $config (param i32 i32 i32 i32) (result i32)))
  (import "mesher" "emit" (func $emit (param i32 i32) (result i32)))
  (import "mesher" "now" (func $now (result i64)))
  (memory (export "memory") 1)
  (data (i32.const 0) "title")
  (func (export "mesher_process") (param $count i32) (param $size i32) (result i32)
    (local $i i32) (local $n i32)
    (if (i64.le_s (call $now) (i64.const 0)) (then unreachable))
    ;; value of "title" (JSON text, e.g. "\"hello\"") at offset 64, at most 512 bytes
    (local.set $n (call $config (i32.const 0) (i32.const 5) (i32.const 64) (i32.const 512)))
    (if (i32.lt_s (local.get $n) (i32.const 0)) (then (local.set $n (i32.const 0))))
    (if (i32.gt_s (local.get $n) (i32.const 512)) (then (return (i32.const 9))))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $count)))
        ;; record at 1024: index, size = 5 + n, field type 3 (title), len n, then the value copied from 64
        (i32.store (i32.const 1024) (local.get $i))
        (i32.store (i32.const 1028) (i32.add (i32.const 5) (local.get $n)))
        (i32.store8 (i32.const 1032) (i32.const 3))
        (i32.store (i32.const 1033) (local.get $n))
        (memory.copy (i32.const 1037) (i32.const 64) (local.get $n))
        (drop (call $emit (i32.const 1024) (i32.add (i32.const 13) (local.get $n))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (i32.const 0)))
