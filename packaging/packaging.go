// Package packaging holds the service files tandem ships: the systemd unit template that `tandem service
// install` renders (embedded here, since Go embeds only files below a package), the static user unit and
// launchd agent, and the nfpm spec `make package` builds a .deb from.
package packaging

import (
	_ "embed"
	"strings"
)

//go:embed tandem.service.tmpl
var systemdTemplate string

// SystemdTemplate is the unit template in kardianos/service's template language, for a user unit
// (WantedBy=default.target) or a system unit (WantedBy=multi-user.target).
func SystemdTemplate(system bool) string {
	target := "default.target"
	if system {
		target = "multi-user.target"
	}
	var b strings.Builder
	for _, l := range strings.SplitAfter(systemdTemplate, "\n") {
		if strings.HasPrefix(l, "# ") && b.Len() == 0 {
			continue // the template's own header comment is not part of the unit
		}
		b.WriteString(l)
	}
	return strings.ReplaceAll(b.String(), "@WANTED_BY@", target)
}
