// Command noop is a processor that passes every event on untouched. The
// benchmarks use it to measure what the host and the ABI cost per event.
package main

import "github.com/mesher-dev/mesher/abi/guest"

func init() { guest.Handle(process) }

func process(*guest.Event) error { return nil }

func main() {}
