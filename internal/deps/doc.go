// Package deps holds tests of the repository's structure: which packages
// may import which, and that every package is documented. It has no code.
package deps
