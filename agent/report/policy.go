package report

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"path/filepath"
	"strconv"
	"time"

	"github.com/mamori-agent/mamori/config"
	"github.com/mamori-agent/mamori/internal/atomicfile"
	"github.com/mamori-agent/mamori/internal/fsguard"
	"github.com/mamori-agent/mamori/wire"
)

// PolicyFile is the copy of the hub's approved lists in force, in the
// state directory: the wire.PolicyBundle as JSON, written whole
// (atomicfile) each time a new version is put in force.
const PolicyFile = "hub-policy.json"

// maxPolicyBundle is the largest policy answer or copy on disk read: the
// hub's largest lists (config.MaxHubApprovedSize) escaped in JSON.
const maxPolicyBundle = 6*config.MaxHubApprovedSize + 64<<10

// HubPolicy is one version of the hub's approved lists, checked.
type HubPolicy struct {
	// Bundle is what the hub served.
	Bundle wire.PolicyBundle
	// Lists are Bundle.Approved as the agent's parser reads them (their
	// entries' File is config.HubPolicyFile(Bundle.Version)).
	Lists *config.ApprovedLists
	// FromDisk is set for the copy kept in the state directory.
	FromDisk bool
}

// CheckBundle checks a policy bundle the way the agent takes it: a
// version, a digest that is the SHA-256 of the lists, and lists that the
// agent's own parser accepts (errors name "hub policy vN", line and
// column).
func CheckBundle(b *wire.PolicyBundle) (*config.ApprovedLists, error) {
	if b.Version <= 0 {
		return nil, fmt.Errorf("hub policy: version %d", b.Version)
	}
	sum := sha256.Sum256([]byte(b.Approved))
	if got := hex.EncodeToString(sum[:]); got != b.Digest {
		return nil, fmt.Errorf("%s: the lists do not match their digest (damaged or changed): digest %.12s, the lists hash to %.12s",
			config.HubPolicyFile(b.Version), b.Digest, got)
	}
	return config.ParseApproved(config.HubPolicyFile(b.Version), []byte(b.Approved))
}

// policyPath is where the copy on disk is kept.
func (r *Reporter) policyPath() string {
	return filepath.Join(r.opts.StateDir, PolicyFile)
}

// LoadPolicy reads the copy of the hub's approved lists kept on disk
// (nil, nil when there is none) and checks it as a pulled version is
// checked; a copy that is damaged or was changed (it does not parse, its
// digest does not match its lists, it is not a regular file, it is too
// large) is refused with an error, and the agent then has no hub lists
// in force until the hub answers. A copy accepted is the version in
// force: the first pull asks the hub for a newer one (If-None-Match).
// Call it before Start.
func (r *Reporter) LoadPolicy() (*HubPolicy, error) {
	path := r.policyPath()
	data, err := fsguard.ReadFileNoFollow(path, maxPolicyBundle)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("the copy of the hub's approved lists: %w", err)
	}
	var b wire.PolicyBundle
	if err := json.Unmarshal(data, &b); err != nil {
		return nil, fmt.Errorf("the copy of the hub's approved lists %s is damaged: %w", path, err)
	}
	lists, err := CheckBundle(&b)
	if err != nil {
		return nil, fmt.Errorf("the copy of the hub's approved lists %s is refused: %w", path, err)
	}
	r.policyInForce.Store(b.Version)
	r.policySeen.Store(b.Version)
	return &HubPolicy{Bundle: b, Lists: lists, FromDisk: true}, nil
}

// PolicyVersion returns the version of the hub's approved lists in
// force, 0 when none.
func (r *Reporter) PolicyVersion() int64 { return r.policyInForce.Load() }

// hubPolicyVersion notes the version the hub named in an answer, and
// wakes the pull when it is one not fetched yet.
func (r *Reporter) hubPolicyVersion(v int64) {
	if v == 0 {
		return
	}
	r.policyVer.Store(v)
	if v != r.policySeen.Load() {
		select {
		case r.policyPoke <- struct{}{}:
		default:
		}
	}
}

// policyLoop pulls the approved lists at once, when an answer of the hub
// names a version not fetched yet, and every heartbeat interval (a safety
// net); a pull that fails is tried again with backoff, at most a
// heartbeat interval later.
func (r *Reporter) policyLoop() {
	defer r.done.Done()
	t := time.NewTimer(0)
	defer t.Stop()
	attempt := 0
	for {
		select {
		case <-t.C:
		case <-r.policyPoke:
		case <-r.stop:
			return
		}
		next := r.opts.Config.HeartbeatInterval
		if r.pullPolicy(r.ctx) {
			attempt = 0
		} else {
			next = min(next, r.opts.Backoff.delay(attempt))
			attempt++
		}
		t.Reset(next)
	}
}

// pullPolicy asks the hub for its approved lists with the ETag of the
// version last fetched. A new version is checked, kept on disk and handed
// to OnPolicy; one refused is handed over as an error (and not fetched
// again until the hub has another). It returns false when the hub did
// not answer (the lists in force stay).
func (r *Reporter) pullPolicy(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, r.opts.RequestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.base+wire.PathPolicy, nil)
	if err != nil {
		return false
	}
	req.Header.Set("Authorization", "Bearer "+*r.token.Load())
	req.Header.Set("User-Agent", "mamori/"+r.opts.Version)
	if v := r.policySeen.Load(); v > 0 {
		req.Header.Set("If-None-Match", `"`+strconv.FormatInt(v, 10)+`"`)
	}
	sentAt := r.now()
	resp, err := r.client.Do(req)
	if err != nil {
		r.policyFailed("network", slog.LevelDebug, "cannot reach the hub for its approved lists; the lists in force stay", "err", err)
		return false
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxPolicyBundle+1))
	recvAt := r.now()
	if d, derr := http.ParseTime(resp.Header.Get("Date")); derr == nil && resp.StatusCode < 500 && r.anchor.Load() == nil {
		r.setOffset(d.Add(500*time.Millisecond), sentAt, recvAt)
	}
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotModified:
		r.policyOK()
		return true
	case http.StatusNotFound:
		r.policyOK()
		r.log.Debug("the hub has no approved lists (mamori-hub policy set)", "detail", problem(body))
		return true
	default:
		detail := problem(body)
		r.policyFailed(fmt.Sprintf("status %d: %s", resp.StatusCode, detail), levelFor(resp.StatusCode),
			"the hub did not hand out its approved lists; the lists in force stay", "status", resp.StatusCode, "detail", detail)
		return false
	}
	if err == nil && len(body) > maxPolicyBundle {
		err = fmt.Errorf("larger than %d bytes", maxPolicyBundle)
	}
	var b wire.PolicyBundle
	if err == nil {
		err = json.Unmarshal(body, &b)
	}
	if err != nil {
		r.policyFailed("body: "+err.Error(), slog.LevelWarn, "the hub's approved lists did not arrive whole; trying again", "err", err)
		return false
	}
	r.policyOK()
	if !b.HubTime.IsZero() {
		r.setOffset(b.HubTime, sentAt, recvAt)
	}
	if b.Version == r.policyInForce.Load() {
		return true // the version in force, served again
	}
	lists, err := CheckBundle(&b)
	if b.Version > 0 {
		r.policySeen.Store(b.Version)
	}
	if err != nil {
		r.log.Error("the hub's approved lists are refused; the lists in force stay", "version", b.Version, "err", err)
		r.opts.OnPolicy(nil, err)
		return true
	}
	kept, _ := json.Marshal(b)
	if err := atomicfile.WriteFile(r.policyPath(), kept); err != nil {
		// In force all the same; after a restart without the hub the
		// previous copy applies until the hub answers.
		r.log.Error("cannot keep the hub's approved lists on disk", "version", b.Version, "err", err)
	}
	r.policyInForce.Store(b.Version)
	r.log.Info("the hub's approved lists pulled", "version", b.Version, "usb", len(lists.USB),
		"networks", len(lists.Networks), "lan_devices", len(lists.LANDevices))
	r.opts.OnPolicy(&HubPolicy{Bundle: b, Lists: lists}, nil)
	return true
}

// policyFailed logs a failed pull at level when its cause differs from
// the last failed pull's, at debug when it is the same: a hub that
// refuses the token is said once, not at each retry.
func (r *Reporter) policyFailed(cause string, level slog.Level, msg string, attrs ...any) {
	if cause == r.policyFailing {
		level = slog.LevelDebug
	}
	r.policyFailing = cause
	r.log.Log(context.Background(), level, msg, attrs...)
}

// policyOK notes a pull the hub answered: the next failure is logged.
func (r *Reporter) policyOK() {
	if r.policyFailing != "" {
		r.log.Debug("the hub answers the policy pull again", "after", r.policyFailing)
		r.policyFailing = ""
	}
}

// levelFor is the log level of a failed pull: a token or URL the hub
// does not take is an error (the sender says it too), the rest a warning.
func levelFor(status int) slog.Level {
	if status == http.StatusUnauthorized || status == http.StatusForbidden {
		return slog.LevelError
	}
	return slog.LevelWarn
}
