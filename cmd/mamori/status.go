package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/user"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mamori-agent/mamori/agent/localapi"
	"github.com/mamori-agent/mamori/config"
)

// Exit codes of mamori status.
const (
	statusClear       = 0 // the agent runs; no violation is open
	statusViolations  = 1 // the agent runs; violations are open
	statusUnreachable = 2 // no agent answered, this user may not ask, or bad flags
)

func init() {
	register(&command{"status", "what the running agent sees now: devices, networks, open violations, the report queue", `Reads the running agent's local socket (agent.local_socket; default ` + config.DefaultLocalSocket + `).
Root and members of agent.local_group (default ` + config.DefaultLocalGroup + `) may ask.
Exit: 0 the agent runs and no violation is open, 1 the agent runs and violations are open,
2 no agent answered (not running, another socket), this user may not ask, or bad flags.`, cmdStatus})
}

// socketFlags are the flags that find the agent's socket.
type socketFlags struct {
	socket, config string
}

func (s *socketFlags) register(fs interface {
	StringVar(p *string, name, value, usage string)
}) {
	fs.StringVar(&s.socket, "socket", "", "the agent's local socket `path` (default: agent.local_socket of the config, else "+config.DefaultLocalSocket+")")
	fs.StringVar(&s.config, "config", "", "config `file` to read agent.local_socket from (default "+defaultConfig+" when it exists and this user can read it)")
}

// path returns the socket to connect to: --socket; else agent.local_socket
// of --config (which must load), or of the default config when this user
// can read it; else the default socket. warn is told why the default
// config was passed over.
func (s *socketFlags) path(warn func(string)) (string, error) {
	if s.socket != "" {
		return s.socket, nil
	}
	if config.DefaultLocalSocket == "" {
		return "", errors.New("the agent serves no local socket on this system")
	}
	file := s.config
	if file == "" {
		if _, err := os.Stat(defaultConfig); errors.Is(err, fs.ErrNotExist) {
			return config.DefaultLocalSocket, nil
		}
		file = defaultConfig
	}
	cfg, err := config.Load(file)
	if err != nil {
		if s.config != "" {
			if errors.Is(err, fs.ErrPermission) {
				return "", fmt.Errorf("%w: the config is for root alone; as this user, give the agent's socket with --socket PATH (agent.local_socket, default %s)", err, config.DefaultLocalSocket)
			}
			return "", err
		}
		if !errors.Is(err, fs.ErrPermission) {
			// Unreadable to this user is the usual case, not worth a word.
			warn(fmt.Sprintf("cannot read %s (%v); trying %s", file, err, config.DefaultLocalSocket))
		}
		return config.DefaultLocalSocket, nil
	}
	if cfg.Agent.LocalSocket == "" {
		return "", fmt.Errorf("%s: agent.local_socket is empty: the agent serves no local socket", file)
	}
	return cfg.Agent.LocalSocket, nil
}

func cmdStatus(args []string, stdout, stderr io.Writer) int {
	flags := newFlags("status", stdout, stderr)
	var sf socketFlags
	sf.register(flags)
	asJSON := flags.Bool("json", false, "print the status as JSON, for scripts (the same fields as the table, and the agent's PID, times and counts)")
	if code, ok := parse(flags, args, stdout, 0); !ok {
		if code == exitError {
			return statusUnreachable
		}
		return code
	}
	path, err := sf.path(func(msg string) { fmt.Fprintln(stderr, "mamori status:", msg) })
	if err != nil {
		fmt.Fprintln(stderr, "mamori status:", err)
		return statusUnreachable
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	c, err := localapi.Dial(ctx, path)
	if err != nil {
		fmt.Fprintf(stderr, "mamori status: %v\n", err)
		switch {
		case errors.Is(err, localapi.ErrNotSocket):
			fmt.Fprintf(stderr, "%s is not a socket, so no agent serves it: give the agent's socket (agent.local_socket) with --socket PATH, or its config with --config FILE. "+
				"%s はソケットではありません。--socket か --config でエージェントのソケットを指定してください。\n", path, path)
		case errors.Is(err, localapi.ErrRefused):
			group := localapi.SocketGroup(path)
			who := "NAME"
			if u, err := user.Current(); err == nil {
				who = u.Username
			}
			fmt.Fprintln(stderr, refusedHint(group, who))
		case errors.Is(err, fs.ErrNotExist), isConnRefused(err):
			service := "mamori service status"
			if path != config.DefaultLocalSocket {
				service = "mamori service status --name NAME, for an instance installed under another name"
			}
			fmt.Fprintf(stderr, "No agent is serving %s. Is it running (%s)? Does it serve another socket? Give it with --socket PATH, or the agent's config with --config FILE (its agent.local_socket). "+
				"エージェントが %s で応答しません。動いているか、別のソケットを使っていないか確かめてください（--socket、--config）。\n", path, service, path)
		}
		return statusUnreachable
	}
	st, err := c.Status(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "mamori status: %v\n", err)
		return statusUnreachable
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(st); err != nil {
			fmt.Fprintln(stderr, "mamori status:", err)
			return statusUnreachable
		}
	} else {
		writeStatus(stdout, st, time.Now())
	}
	if len(st.Violations) > 0 {
		return statusViolations
	}
	return statusClear
}

// writeStatus prints st for people: the agent, the devices, the network,
// the open violations (in the configured language, the other below),
// the report queue and the notifiers. now is for "ago".
func writeStatus(w io.Writer, st *localapi.Status, now time.Time) {
	a := st.Agent
	fmt.Fprintf(w, "mamori %s running (pid %d) since %s", cell(a.Version), a.PID, a.Started.Local().Format(time.DateTime))
	if a.AssetID != "" {
		fmt.Fprintf(w, ", asset %s", cell(a.AssetID))
	}
	fmt.Fprintln(w)
	digest := a.ConfigDigest
	if len(digest) > 12 {
		digest = digest[:12]
	}
	if digest == "" {
		digest = "(built-in defaults)"
	}
	fmt.Fprintf(w, "Policy: %d approved USB entries, %d approved networks, %d registered LAN devices; config digest %s", a.ApprovedUSB, a.ApprovedNetworks, a.LANDevices, digest)
	if a.PolicyVersion > 0 {
		fmt.Fprintf(w, "; the hub's lists v%d", a.PolicyVersion)
	}
	fmt.Fprintln(w)

	fmt.Fprintln(w)
	if len(st.USB) == 0 {
		fmt.Fprintln(w, "USB devices / USB 機器: none")
	} else {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "USB DEVICE\tID\tSERIAL\tSTORAGE\tVERDICT\tENTRY\tNAME")
		for _, d := range st.USB {
			serial := "-"
			if d.Serial != nil {
				serial = cell(*d.Serial)
			}
			fmt.Fprintf(tw, "%s\t%s:%s\t%s\t%v\t%s\t%s\t%s\n", cell(d.Path), cell(d.VendorID), cell(d.ProductID), serial, d.Storage,
				cell(d.Verdict), cell(d.Entry), cell(d.Name))
		}
		tw.Flush()
	}
	if len(st.Volumes) > 0 {
		fmt.Fprintln(w)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "VOLUME\tMOUNT POINT\tFS\tLABEL\tENCRYPTED\tUSB")
		for _, v := range st.Volumes {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%v\t%s\n", cell(v.Device), cell(v.MountPoint), cell(v.FSType), cell(v.Label), v.Encrypted, cell(v.USBDevice))
		}
		tw.Flush()
	}

	fmt.Fprintln(w)
	if len(st.Interfaces) == 0 {
		fmt.Fprintln(w, "Network interfaces / ネットワーク: none but loopback")
	} else {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "INTERFACE\tKIND\tUP\tSSID\tADDRESSES\tVERDICT\tNETWORK")
		for _, l := range st.Interfaces {
			fmt.Fprintf(tw, "%s\t%s\t%v\t%s\t%s\t%s\t%s\n", cell(l.Name), cell(l.Kind), l.Up, cell(l.SSID),
				cell(strings.Join(l.Addresses, ",")), cell(l.Verdict), cell(strings.Join(l.Networks, ",")))
		}
		tw.Flush()
	}
	if len(st.Gateways) > 0 {
		fmt.Fprintln(w)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "DEFAULT ROUTE\tGATEWAY\tMAC\tPINNED\tLOOK-ALIKE")
		for _, g := range st.Gateways {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%v\n", cell(g.Interface), cell(g.IP), cell(g.MAC), cell(g.Pinned), g.LookAlike)
		}
		tw.Flush()
	}
	if st.LAN.Registered+st.LAN.Unregistered > 0 {
		fmt.Fprintf(w, "LAN devices on approved networks: %d registered, %d unregistered", st.LAN.Registered, st.LAN.Unregistered)
		if n := len(st.LAN.UnregisteredDevices); n > 0 {
			var macs []string
			for _, d := range st.LAN.UnregisteredDevices {
				macs = append(macs, cell(d.MAC)+" ("+cell(d.IP)+" on "+cell(d.Interface)+")")
			}
			fmt.Fprintf(w, ": %s", strings.Join(macs, ", "))
			if st.LAN.Unregistered > n {
				fmt.Fprintf(w, ", and %d more", st.LAN.Unregistered-n)
			}
		}
		fmt.Fprintln(w)
	}

	fmt.Fprintln(w)
	if len(st.Violations) == 0 {
		fmt.Fprintln(w, "No open violations. 未解消の違反はありません。")
	} else {
		fmt.Fprintf(w, "%d open violation(s) / 未解消の違反 %d 件:\n", len(st.Violations), len(st.Violations))
		for _, v := range st.Violations {
			since := ""
			if v.Since != nil {
				since = ", since " + v.Since.Local().Format(time.DateTime)
			}
			fmt.Fprintf(w, "- [%s] %s (%s%s)\n", cell(v.Severity), cell(v.Kind), cell(v.Device), since)
			for _, t := range v.Texts {
				fmt.Fprintf(w, "    %s: %s\n", cell(ruleTitle(t)), cell(t.Subject))
				if t.Remedy != "" {
					fmt.Fprintf(w, "      → %s\n", cell(t.Remedy))
				}
			}
		}
	}

	fmt.Fprintln(w)
	if r := st.Report; r == nil {
		fmt.Fprintln(w, "Hub: not reporting (report.url not set)")
	} else {
		last := "never in this run"
		if r.LastSuccess != nil {
			last = fmt.Sprintf("%s (%s ago)", r.LastSuccess.Local().Format(time.DateTime), now.Sub(*r.LastSuccess).Round(time.Second))
		}
		fmt.Fprintf(w, "Hub %s: %d events queued, %d dropped; last accepted %s\n", cell(r.URL), r.Queue, r.Dropped, last)
	}
	fmt.Fprintf(w, "Audit log: last seq %d", st.Audit.LastSeq)
	if st.Audit.Pending > 0 {
		fmt.Fprintf(w, ", %d events waiting for the log to take them", st.Audit.Pending)
	}
	fmt.Fprintln(w)
	writeSources(w, st.Sources)
	if len(st.Notifiers) == 0 {
		fmt.Fprintln(w, "Desktop notifiers: none connected (the agent starts one in a desktop session when it warns)")
	} else {
		var who []string
		for _, n := range st.Notifiers {
			name := n.User
			if name == "" {
				name = fmt.Sprintf("uid %d", n.UID)
			}
			who = append(who, fmt.Sprintf("%s (pid %d)", cell(name), n.PID))
		}
		fmt.Fprintf(w, "Desktop notifiers: %s\n", strings.Join(who, ", "))
	}
}

// ruleTitle is a text's title with the rule it breaks: "許可されていない
// USB 記憶媒体（第6条・第7条）", "Unapproved USB storage (articles 6 and 7)".
func ruleTitle(t localapi.Text) string {
	switch {
	case t.Rule == "":
		return t.Title
	case t.Lang == "ja":
		return t.Title + "（" + t.Rule + "）"
	}
	return t.Title + " (" + t.Rule + ")"
}

// writeSources prints the self-test of the event sources: "Event
// sources: uevents events, mount watch events, rtnetlink events", and a
// line for each one that fell back to rescans or is off, with why.
func writeSources(w io.Writer, sources []localapi.SourceStatus) {
	if len(sources) == 0 {
		return
	}
	var all []string
	for _, s := range sources {
		all = append(all, cell(s.Name)+" "+cell(s.State))
	}
	fmt.Fprintf(w, "Event sources / イベント源: %s\n", strings.Join(all, ", "))
	for _, s := range sources {
		switch s.State {
		case localapi.SourceRescans:
			fmt.Fprintf(w, "  %s: seen at rescans only (%s)\n", cell(s.Name), cell(s.Detail))
		case localapi.SourceOff, localapi.SourcePolling:
			fmt.Fprintf(w, "  %s: %s (%s)\n", cell(s.Name), cell(s.State), cell(s.Detail))
		}
	}
}
