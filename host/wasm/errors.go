package wasm

import (
	"errors"
	"fmt"
)

// Reason classifies why a processor failed a batch.
type Reason string

// Failure reasons. They are label values of the host's metrics, so they
// stay few and stable.
const (
	ReasonTimeout       Reason = "timeout"        // the call passed its deadline
	ReasonCanceled      Reason = "canceled"       // the caller's context ended
	ReasonMemoryLimit   Reason = "memory_limit"   // the guest hit its memory cap
	ReasonTrap          Reason = "trap"           // the guest trapped or exited
	ReasonInvalidOutput Reason = "invalid_output" // malformed or out-of-range records
	ReasonOutputLimit   Reason = "output_limit"   // more output than allowed
	ReasonStatus        Reason = "status"         // mesher_process returned non-zero
	ReasonQuarantined   Reason = "quarantined"    // skipped: the processor is quarantined
	ReasonStart         Reason = "start"          // a new instance could not start
	ReasonUnavailable   Reason = "unavailable"    // the processor runs elsewhere and could not be reached
)

// ProcessError is the error of a failed batch. It names the processor and
// the reason; the instance that failed has been discarded.
type ProcessError struct {
	Processor string
	Reason    Reason
	Err       error
}

func (e *ProcessError) Error() string {
	return fmt.Sprintf("processor %s: %s: %v", e.Processor, e.Reason, e.Err)
}

func (e *ProcessError) Unwrap() error { return e.Err }

// ErrQuarantined is wrapped by the error of a batch skipped because the
// processor is quarantined.
var ErrQuarantined = errors.New("quarantined after repeated failures")

// ReasonOf returns the reason of a *ProcessError in err's chain, or "".
func ReasonOf(err error) Reason {
	var pe *ProcessError
	if errors.As(err, &pe) {
		return pe.Reason
	}
	return ""
}

// ValidationError says why a module was refused. Kind is stable and
// machine-readable; the message is for people.
type ValidationError struct {
	Kind ValidationKind
	Msg  string
}

func (e *ValidationError) Error() string { return e.Msg }

// ValidationKind classifies a refused module.
type ValidationKind string

// Kinds of validation failures.
const (
	InvalidBinary      ValidationKind = "invalid_binary"      // not Wasm, or does not compile
	TooLarge           ValidationKind = "too_large"           // the module's bytes exceed the limit
	ABIMissing         ValidationKind = "abi_missing"         // no abi_v1 import
	ABIVersion         ValidationKind = "abi_version"         // built for another ABI version
	ForbiddenImport    ValidationKind = "forbidden_import"    // imports something the ABI does not offer
	ImportSignature    ValidationKind = "import_signature"    // a mesher import with the wrong type
	MissingExport      ValidationKind = "missing_export"      // no mesher_process or memory export
	ManifestMissing    ValidationKind = "manifest_missing"    // no mesher.manifest section
	ManifestInvalid    ValidationKind = "manifest_invalid"    // manifest unreadable or not sane
	MemoryTooLarge     ValidationKind = "memory_too_large"    // initial memory above the cap
	StartSection       ValidationKind = "start_section"       // a start function runs before the host can bound it
	InstantiateFailure ValidationKind = "instantiate_failure" // the module fails when started or on an empty batch
)

func invalid(kind ValidationKind, format string, args ...any) error {
	return &ValidationError{Kind: kind, Msg: fmt.Sprintf(format, args...)}
}

// KindOf returns the ValidationKind of a *ValidationError in err's chain.
func KindOf(err error) ValidationKind {
	var ve *ValidationError
	if errors.As(err, &ve) {
		return ve.Kind
	}
	return ""
}
