//go:build !unix

package wasm

import "github.com/tetratelabs/wazero/experimental"

// allocator is nil: wazero's default, a growing Go slice.
var allocator experimental.MemoryAllocator
