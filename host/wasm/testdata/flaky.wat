;; Traps on batches of exactly 13 events and keeps every event otherwise:
;; a processor that can fail and then recover.
(module
  (import "mesher" "abi_v1" (func $abi_v1))
  (import "mesher" "emit" (func $emit (param i32 i32) (result i32)))
  (memory (export "memory") 2)
  (func (export "mesher_process") (param $count i32) (param $size i32) (result i32)
    (local $i i32)
    (if (i32.eq (local.get $count) (i32.const 13)) (then unreachable))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $count)))
        (i32.store (i32.mul (local.get $i) (i32.const 8)) (local.get $i))
        (i32.store (i32.add (i32.mul (local.get $i) (i32.const 8)) (i32.const 4)) (i32.const 0))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (if (local.get $count)
      (then (drop (call $emit (i32.const 0) (i32.mul (local.get $count) (i32.const 8))))))
    (i32.const 0)))
