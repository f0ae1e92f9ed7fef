// Package emukit is the provider-neutral half of tandem's API emulators: a self-signed TLS setup, a fault plan
// applied by a middleware around the provider's http.Handler, a bounded request log, an admin endpoint to change
// faults at run time, and a server helper for tests and for `tandem emulate`.
//
// A provider emulator builds a Kit, registers its own named fault actions (for example pCloud's expireToken)
// with RegisterHook, and serves Kit.Wrap(handler). Everything in here is safe for concurrent use.
//
// A fault plan (`--faults plan.yaml`, or POST it to the admin endpoint's /faults as YAML or JSON):
//
//	seed: 7
//	rules:
//	  - match: ^uploadfile$          # op name, URL path or "METHOD /path"
//	    nth: 2                       # only the 2nd matching request
//	    action: {do: applyThenReset}
//	  - match: ^content$
//	    prob: 0.1                    # seeded
//	    times: 3                     # at most three firings
//	    action: {do: resetAfter, bytes: 65536}
//	  - match: ^listfolder$
//	    every: 5
//	    action: {do: status, status: 503, retryAfter: 2, retryAfterDate: true}
//	  - match: ^diff$
//	    times: 1
//	    action: {do: compactHistory} # a provider hook
package emukit
