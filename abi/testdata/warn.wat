(module
  (import "mesher" "abi_v1" (func $abi_v1))
  (import "mesher" "emit" (func $emit (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  ;; One output record, 36 bytes at offset 0:
  ;;   index:u32 (patched per event)   size:u32 = 28
  ;;   field level: type 4, len 7,  "warning"
  ;;   field tag:   type 5, len 11, keyLen:u16 = 6, "source", "wat"
  (data (i32.const 0)
    "\00\00\00\00" "\1c\00\00\00"
    "\04" "\07\00\00\00" "warning"
    "\05" "\0b\00\00\00" "\06\00" "source" "wat")
  (func (export "mesher_process") (param $count i32) (param $size i32) (result i32)
    (local $i i32)
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $count)))
        (i32.store (i32.const 0) (local.get $i))
        (drop (call $emit (i32.const 0) (i32.const 36)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (i32.const 0)))
