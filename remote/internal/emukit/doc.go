// Package emukit is the provider-neutral half of tandem's API emulators: a self-signed TLS setup, a fault plan
// applied by a middleware around the provider's http.Handler, a bounded request log, an admin endpoint to change
// faults at run time, and a server helper for tests and for `tandem emulate`.
//
// A provider emulator builds a Kit, registers its own named fault actions (for example pCloud's expireToken)
// with RegisterHook, and serves Kit.Wrap(handler). Everything in here is safe for concurrent use.
package emukit
