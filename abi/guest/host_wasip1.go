//go:build wasip1

package guest

import (
	"runtime"
	"unsafe"

	"github.com/mesher-dev/mesher/abi"
)

//go:wasmimport mesher abi_v1
func importVersion()

//go:wasmimport mesher input
func importInput(ptr unsafe.Pointer, n int32) int32

//go:wasmimport mesher emit
func importEmit(ptr unsafe.Pointer, n int32) int32

//go:wasmimport mesher log
func importLog(level int32, ptr unsafe.Pointer, n int32)

//go:wasmimport mesher config
func importConfig(keyPtr unsafe.Pointer, keyLen int32, bufPtr unsafe.Pointer, bufLen int32) int32

//go:wasmimport mesher now
func importNow() int64

func init() {
	importVersion()
	host = wasmHost{}
}

// Buffers reused across batches: the host copies each batch into in, and
// results accumulate in out.
var in, out, cfgBuf []byte

//go:wasmexport mesher_process
func mesherProcess(count, size int32) int32 {
	status := process(int(size))
	// A Go guest's heap grows without bound unless the scheduler runs
	// before control returns to the host.
	runtime.Gosched()
	return status
}

func process(size int) int32 {
	if handler == nil {
		host.log(abi.LogError, "no handler registered: call guest.Handle from init")
		return 1
	}
	if cap(in) < size {
		in = make([]byte, size)
	}
	in = in[:size]
	if size > 0 {
		if n := importInput(unsafe.Pointer(&in[0]), int32(size)); n != int32(size) {
			host.log(abi.LogError, "input: host returned an unexpected size")
			return 2
		}
	}
	var err error
	out, err = processBatch(in, handler, out[:0], emit)
	if err != nil {
		host.log(abi.LogError, err.Error())
		return 3
	}
	emit(out)
	out = out[:0]
	return 0
}

func emit(b []byte) []byte {
	if len(b) > 0 {
		importEmit(unsafe.Pointer(&b[0]), int32(len(b)))
	}
	return b[:0]
}

type wasmHost struct{}

func (wasmHost) log(level int32, msg string) {
	if msg == "" {
		return
	}
	importLog(level, unsafe.Pointer(unsafe.StringData(msg)), int32(len(msg)))
}

func (wasmHost) now() int64 { return importNow() }

func (wasmHost) config(key string) ([]byte, bool) {
	var kp unsafe.Pointer
	if key != "" {
		kp = unsafe.Pointer(unsafe.StringData(key))
	}
	for {
		var bp unsafe.Pointer
		if cap(cfgBuf) > 0 {
			bp = unsafe.Pointer(&cfgBuf[:1][0])
		}
		n := importConfig(kp, int32(len(key)), bp, int32(cap(cfgBuf)))
		if n < 0 {
			return nil, false
		}
		if int(n) <= cap(cfgBuf) {
			v := make([]byte, n)
			copy(v, cfgBuf[:n])
			return v, true
		}
		cfgBuf = make([]byte, 0, n)
	}
}
