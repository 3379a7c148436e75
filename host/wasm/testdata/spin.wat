;; A tight loop of 1,000,000 iterations per batch, then keeps nothing: the
;; worst case for per-iteration interrupt checks.
(module
  (import "mesher" "abi_v1" (func $abi_v1))
  (memory (export "memory") 1)
  (global $sink (mut i32) (i32.const 0))
  (func (export "mesher_process") (param $count i32) (param $size i32) (result i32)
    (local $i i32) (local $acc i32)
    (if (i32.eqz (local.get $count)) (then (return (i32.const 0))))
    (local.set $i (i32.const 1000000))
    (loop $l
      (local.set $acc (i32.add (local.get $acc) (local.get $i)))
      (local.set $i (i32.sub (local.get $i) (i32.const 1)))
      (br_if $l (local.get $i)))
    (global.set $sink (local.get $acc))
    (i32.const 0)))
