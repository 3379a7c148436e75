;; Hostile: on a non-empty batch, grows memory a page at a time and fills
;; every new page until memory.grow fails at the cap, then traps.
(module
  (import "mesher" "abi_v1" (func $abi_v1))
  (memory (export "memory") 1)
  (func (export "mesher_process") (param $count i32) (param $size i32) (result i32)
    (local $page i32)
    (if (i32.eqz (local.get $count)) (then (return (i32.const 0))))
    (block $full
      (loop $grow
        (local.set $page (memory.grow (i32.const 1)))
        (br_if $full (i32.eq (local.get $page) (i32.const -1)))
        ;; fill the new page so it is really resident
        (memory.fill (i32.mul (local.get $page) (i32.const 65536)) (i32.const 1) (i32.const 65536))
        (br $grow)))
    unreachable))
