// Package abi is the contract between a Mesher host and a Wasm processor:
// the ABI version, the names of the imports and exports, the record codec
// that carries events in both directions, and the manifest a module embeds.
//
// The contract is documented for guest authors in any language in ABI.md
// next to this file. This package imports only the standard library so
// that guests, hosts and tools can share it.
package abi

// Version is the ABI version this package describes.
const Version = 1

// ImportModule is the Wasm import module name of the host functions.
const ImportModule = "mesher"

// Host functions a processor may import from ImportModule.
const (
	// FuncVersion is the version marker: a module built for ABI v1 imports
	// "mesher" "abi_v1" () -> (). A module importing abi_v2 is refused by a
	// v1 host with a message instead of failing at run time.
	FuncVersion = "abi_v1"
	// FuncInput is input(ptr, len i32) -> i32: copy the current batch's
	// input records into guest memory.
	FuncInput = "input"
	// FuncEmit is emit(ptr, len i32) -> i32: hand output records to the host.
	FuncEmit = "emit"
	// FuncLog is log(level, ptr, len i32): write a message to the host log.
	FuncLog = "log"
	// FuncConfig is config(keyPtr, keyLen, bufPtr, bufLen i32) -> i32: look up
	// a key of this processor's configuration as JSON text.
	FuncConfig = "config"
	// FuncNow is now() -> i64: the host clock in Unix nanoseconds.
	FuncNow = "now"
)

// VersionImportPrefix prefixes every version marker import ("abi_v1", "abi_v2", …).
const VersionImportPrefix = "abi_v"

// Exports a processor provides.
const (
	// ExportProcess is mesher_process(count, size i32) -> i32, called once
	// per batch of count records totalling size bytes. 0 means success.
	ExportProcess = "mesher_process"
	// ExportMemory is the module's linear memory.
	ExportMemory = "memory"
	// ExportInitialize is the optional reactor initializer, called once when
	// an instance starts (standard Go and Rust wasip1 builds export it).
	ExportInitialize = "_initialize"
)

// WASIModule is the one other import module a processor may use. The host
// provides WASI without preopened directories, environment, arguments or
// sockets, so it gives a guest runtime a clock, randomness and stderr but no
// way out of the sandbox.
const WASIModule = "wasi_snapshot_preview1"

// ManifestSection is the name of the custom section holding the manifest.
const ManifestSection = "mesher.manifest"

// Log levels of FuncLog.
const (
	LogDebug int32 = 0
	LogInfo  int32 = 1
	LogWarn  int32 = 2
	LogError int32 = 3
)

// Return values of host functions.
const (
	// ErrNotInCall is returned by input, emit and config when called outside
	// of mesher_process.
	ErrNotInCall int32 = -1
	// ErrShortBuffer is returned by input when the buffer cannot hold the batch.
	ErrShortBuffer int32 = -2
	// ConfigMissing is returned by config when the key is not set.
	ConfigMissing int32 = -1
)
