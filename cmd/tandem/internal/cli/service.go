package cli

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/kardianos/service"
	"github.com/spf13/cobra"

	"github.com/tandemsync/tandem/cmd/tandem/internal/daemon"
	"github.com/tandemsync/tandem/packaging"
)

type serviceOpts struct {
	config string
	system bool
	runAs  string
	init   string
}

func newServiceCmd(app *App) *cobra.Command {
	var o serviceOpts
	c := &cobra.Command{
		Use:   "service install|uninstall|start|stop|status",
		Short: "Install tandem as an OS service (systemd user unit by default, launchd, Windows service)",
		Long: `Install, remove, start, stop or query tandem as an OS service that runs "tandem run".

On Linux this is a systemd user unit (~/.config/systemd/user/tandem.service) unless --system asks for a
system unit (/etc/systemd/system/tandem.service, needs root; --run-as names the user it runs as). On macOS
it is a launchd agent, on Windows a service. The service logs JSON to <state dir>/tandem.log (rotated), or
to the config's log_file.`,
		Example: `  tandem service install && tandem service start
  sudo tandem service install --system --run-as alice --config /home/alice/.config/tandem/config.yaml`,
		Args:      usageArgs(cobra.ExactArgs(1)),
		ValidArgs: []string{"install", "uninstall", "start", "stop", "status"},
		RunE: func(c *cobra.Command, args []string) error {
			return runService(app, o, args[0], c.OutOrStdout())
		},
	}
	f := c.Flags()
	f.StringVar(&o.config, "config", "", "config file the service runs with (default ~/.config/tandem/config.yaml)")
	f.BoolVar(&o.system, "system", false, "a system-wide unit instead of a user unit (Linux)")
	f.StringVar(&o.runAs, "run-as", "", "with --system: the user the service runs as (default: $SUDO_USER, else root)")
	f.StringVar(&o.init, "init", "", "use this service system instead of the detected one (e.g. linux-systemd)")
	_ = f.MarkHidden("init")
	return c
}

// serviceConfig describes the tandem service to kardianos: its command line and tandem's own unit template.
func serviceConfig(configPath string, system bool) *service.Config {
	return &service.Config{
		Name:        "tandem",
		DisplayName: "tandem",
		Description: "tandem two-way file sync",
		Arguments:   []string{"run", "--service", "--config", configPath},
		Option: service.KeyValue{
			"UserService":   !system,
			"SystemdScript": packaging.SystemdTemplate(system),
			"RunAtLoad":     true,
			"KeepAlive":     true,
			"ReloadSignal":  "HUP",
			"OnFailure":     "restart",
		},
	}
}

func runService(app *App, o serviceOpts, action string, w io.Writer) error {
	switch action {
	case "install", "uninstall", "start", "stop", "status":
	default:
		return usagef("unknown service action %q: want install, uninstall, start, stop or status", action)
	}
	if o.runAs != "" && !o.system {
		return usagef("--run-as needs --system")
	}
	path, err := configPath(o.config)
	if err != nil {
		return err
	}
	if action == "install" {
		if _, err := loadConfig(app, path, false); err != nil {
			return fmt.Errorf("%w\n(the service would not start with this config)", err)
		}
	}
	cfg := serviceConfig(path, o.system)
	if o.system {
		cfg.UserName = o.runAs
		if cfg.UserName == "" {
			cfg.UserName = os.Getenv("SUDO_USER")
		}
	}
	prog := &daemon.Program{}
	var svc service.Service
	if o.init != "" {
		var names []string
		for _, s := range service.AvailableSystems() {
			names = append(names, s.String())
			if s.String() == o.init {
				svc, err = s.New(prog, cfg)
			}
		}
		if svc == nil && err == nil {
			return usagef("--init %q: want one of %s", o.init, strings.Join(names, ", "))
		}
	} else {
		svc, err = service.New(prog, cfg)
	}
	if err != nil {
		return fmt.Errorf("service: %w", err)
	}
	switch action {
	case "status":
		st, err := svc.Status()
		if err != nil {
			return fmt.Errorf("service status (%s): %w", svc.Platform(), err)
		}
		fmt.Fprintf(w, "%s service: %s\n", svc.Platform(), map[service.Status]string{
			service.StatusRunning: "running", service.StatusStopped: "stopped", service.StatusUnknown: "unknown"}[st])
		return nil
	default:
		if err := service.Control(svc, action); err != nil {
			return fmt.Errorf("service %s (%s): %w", action, svc.Platform(), err)
		}
	}
	switch action {
	case "install":
		fmt.Fprintf(w, "installed the tandem service (%s) running with %s\nstart it with: tandem service start\n", svc.Platform(), path)
	default:
		fmt.Fprintf(w, "tandem service: %s done\n", action)
	}
	return nil
}
