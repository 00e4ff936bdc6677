package report

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/mamori-agent/mamori/config"
	"github.com/mamori-agent/mamori/internal/fsguard"
)

// CheckFiles checks the secret files of a report: section as New takes
// them: report.token_file must exist, be a regular file that only root
// or this user owns and can write and that neither group nor others can
// read (fsguard.CheckFile and the mode; on Windows the owner and DACL,
// SYSTEM and Administrators standing for root), and hold one token alone on one
// line; report.key_file, when set, the same but for its content. Every
// error names the config key, the file and the fix. mamori run, config
// check and service install call it before anything starts, so that a
// token the agent would refuse stops the start instead of leaving the
// hub without reports.
func CheckFiles(c config.Report) error {
	var errs []error
	if c.TokenFile != "" || c.URL != "" {
		if _, err := readToken(c.TokenFile); err != nil {
			errs = append(errs, err)
		}
	}
	if c.KeyFile != "" {
		if err := checkKeyFile(c.KeyFile); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// newTokenFix says how to make a token file at path.
func newTokenFix(path string) string {
	return fmt.Sprintf("for a new token run `mamori-hub agent add NAME > %[1]s` where the hub runs "+
		"(`mamori-hub agent rotate NAME > %[1]s` for a PC already added; copy the file here if that is another machine), "+
		"then %[2]s", path, privateFix(path))
}

// readToken reads the agent's token from path (report.token_file), which
// must pass checkSecretFile and hold the token alone on one line. Its
// errors start with "report.token_file: ".
func readToken(path string) (string, error) {
	const key = "report.token_file"
	if path == "" {
		return "", fmt.Errorf("%s is not set: the agent cannot report to the hub without its token", key)
	}
	if err := checkSecretFile(key, path); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("%s: %s does not exist; %s", key, path, newTokenFix(path))
		}
		return "", err
	}
	b, err := fsguard.ReadFile(path, 4096)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("%s: %s does not exist; %s", key, path, newTokenFix(path))
	case errors.Is(err, fs.ErrPermission):
		return "", fmt.Errorf("%s: %w (the agent reads it as %s: check as %[2]s)", key, err, superuser)
	case errors.Is(err, fsguard.ErrTooLarge):
		return "", fmt.Errorf("%s: %s is too large for a token: it must hold the token alone on one line; %s", key, path, newTokenFix(path))
	case err != nil:
		return "", fmt.Errorf("%s: %w", key, err)
	}
	tok := strings.TrimSpace(string(b))
	switch {
	case tok == "":
		return "", fmt.Errorf("%s: %s is empty: it must hold this PC's token alone on one line; %s", key, path, newTokenFix(path))
	case strings.ContainsAny(tok, " \t\r\n"):
		return "", fmt.Errorf("%s: %s must hold the token alone on one line, and holds more; %s", key, path, newTokenFix(path))
	}
	for _, c := range []byte(tok) {
		if c < 0x21 || c > 0x7e {
			return "", fmt.Errorf("%s: %s holds a character a token cannot have (not the output of mamori-hub agent add); %s", key, path, newTokenFix(path))
		}
	}
	return tok, nil
}

// checkKeyFile checks report.key_file as checkSecretFile does.
func checkKeyFile(path string) error {
	const key = "report.key_file"
	err := checkSecretFile(key, path)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s: %s does not exist (the private key of report.cert_file)", key, path)
	}
	return err
}

// checkSecretFile refuses a secret file (a token, a private key) that
// someone other than root or this user owns or can write, or that group
// or others can read (on Windows: that anyone but SYSTEM, Administrators
// and this user owns, can change or can read, by its owner and DACL):
// whoever reads it can speak for this PC. Both problems are told at
// once; each error starts with "KEY: ". An error wrapping fs.ErrNotExist
// means the file is missing.
func checkSecretFile(key, path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("%s: %w", key, err)
	}
	var errs []error
	if err := fsguard.CheckFile(path); err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", key, err))
	}
	if fi.Mode().IsRegular() {
		if err := checkSecret(path, fi); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", key, err))
		}
	}
	return errors.Join(errs...)
}
