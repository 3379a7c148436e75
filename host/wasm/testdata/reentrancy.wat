;; Traps if two calls ever run in the same instance at once; otherwise
;; keeps every event. The pool hammer test runs it from many goroutines.
(module
  (import "mesher" "abi_v1" (func $abi_v1))
  (import "mesher" "emit" (func $emit (param i32 i32) (result i32)))
  (memory (export "memory") 2)
  (global $busy (mut i32) (i32.const 0))
  (func (export "mesher_process") (param $count i32) (param $size i32) (result i32)
    (local $i i32)
    (if (global.get $busy) (then unreachable))
    (global.set $busy (i32.const 1))
    ;; one "keep" record (index, size 0) per event, laid out from offset 0
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $count)))
        (i32.store (i32.mul (local.get $i) (i32.const 8)) (local.get $i))
        (i32.store (i32.add (i32.mul (local.get $i) (i32.const 8)) (i32.const 4)) (i32.const 0))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (if (local.get $count)
      (then (drop (call $emit (i32.const 0) (i32.mul (local.get $count) (i32.const 8))))))
    (global.set $busy (i32.const 0))
    (i32.const 0)))
