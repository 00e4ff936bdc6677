package web_test

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mamori-agent/mamori/hub"
	"github.com/mamori-agent/mamori/hub/hubtest"
	"github.com/mamori-agent/mamori/hub/store"
	"github.com/mamori-agent/mamori/hub/store/sqlstore"
)

// client is a browser-like client: a cookie jar, no redirects followed.
func client(t *testing.T) *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// get fetches path with the headers h (name, value, ...).
func get(t *testing.T, c *http.Client, base, path string, h ...string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", base+path, nil)
	for i := 0; i+1 < len(h); i += 2 {
		req.Header.Set(h[i], h[i+1])
	}
	return do(t, c, req)
}

func do(t *testing.T, c *http.Client, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// postForm sends a form as a same-origin browser form does (Origin and
// Sec-Fetch-Site set), with the extra headers h.
func postForm(t *testing.T, c *http.Client, base, path string, form url.Values, h ...string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", base)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	for i := 0; i+1 < len(h); i += 2 {
		req.Header.Set(h[i], h[i+1])
	}
	return do(t, c, req)
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// formCSRF is the csrf hidden field of a page.
func formCSRF(t *testing.T, body string) string {
	t.Helper()
	m := csrfField.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no csrf field in\n%s", body)
	}
	return m[1]
}

func want(t *testing.T, resp *http.Response, body string, status int) {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("%s %s: status %d, want %d\n%s", resp.Request.Method, resp.Request.URL, resp.StatusCode, status, body)
	}
}

// login logs c in with token through the form and returns the page
// after it.
func login(t *testing.T, c *http.Client, base, token string) {
	t.Helper()
	resp, body := get(t, c, base, "/login?next=/agents")
	want(t, resp, body, 200)
	resp, body = postForm(t, c, base, "/login", url.Values{"csrf": {formCSRF(t, body)}, "token": {token}, "next": {"/agents"}})
	want(t, resp, body, http.StatusSeeOther)
	if loc := resp.Header.Get("Location"); loc != "/agents" {
		t.Fatalf("login went to %q", loc)
	}
}

func TestPagesNeedStaff(t *testing.T) {
	h := hubtest.New(t)
	s := seed(t, h, time.Now())
	c := client(t)
	for _, p := range []string{"/", "/violations", "/agents", "/devices"} {
		resp, body := get(t, c, h.URL, p)
		want(t, resp, body, http.StatusSeeOther)
		if loc := resp.Header.Get("Location"); loc != "/login?next="+url.QueryEscape(p) {
			t.Errorf("%s: to %q", p, loc)
		}
		resp, body = get(t, c, h.URL, p, "Authorization", "Bearer "+s.Agent)
		want(t, resp, body, http.StatusForbidden)
		resp, body = get(t, c, h.URL, p, "Authorization", "Bearer nope")
		want(t, resp, body, http.StatusUnauthorized)
		if resp.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s: 401 without WWW-Authenticate", p)
		}
		resp, body = get(t, c, h.URL, p, "Authorization", "Bearer "+s.Admin)
		want(t, resp, body, 200)
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
			t.Errorf("%s: CSP %q", p, csp)
		}
		if strings.Contains(body, "/logout") {
			t.Errorf("%s: a logout form with a Bearer header", p)
		}
	}
	resp, body := get(t, c, h.URL, "/nope", "Authorization", "Bearer "+s.Admin)
	want(t, resp, body, 404)
	resp, body = get(t, c, h.URL, "/static/style.css")
	want(t, resp, body, 200)
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/css") {
		t.Fatalf("style.css as %q", resp.Header.Get("Content-Type"))
	}
}

func TestLoginLogout(t *testing.T) {
	h := hubtest.New(t)
	s := seed(t, h, time.Now())
	c := client(t)
	resp, body := get(t, c, h.URL, "/login")
	want(t, resp, body, 200)
	csrf := formCSRF(t, body)
	form := func(token string) url.Values {
		return url.Values{"csrf": {csrf}, "token": {token}, "next": {"/devices"}}
	}

	// Refused: cross-site (Sec-Fetch-Site, then Origin alone), no or a
	// wrong CSRF token, an agent's token, an unknown token.
	resp, body = postForm(t, c, h.URL, "/login", form(s.Admin), "Sec-Fetch-Site", "cross-site", "Origin", "https://evil.example")
	want(t, resp, body, http.StatusForbidden)
	req, _ := http.NewRequest("POST", h.URL+"/login", strings.NewReader(form(s.Admin).Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://evil.example")
	resp, body = do(t, c, req)
	want(t, resp, body, http.StatusForbidden)
	resp, body = postForm(t, c, h.URL, "/login", url.Values{"token": {s.Admin}})
	want(t, resp, body, http.StatusForbidden)
	csrf = formCSRF(t, body) // each refusal hands out a new form
	resp, body = postForm(t, c, h.URL, "/login", url.Values{"csrf": {"x" + csrf}, "token": {s.Admin}})
	want(t, resp, body, http.StatusForbidden)
	csrf = formCSRF(t, body)
	resp, body = postForm(t, c, h.URL, "/login", form(s.Agent))
	want(t, resp, body, http.StatusForbidden)
	csrf = formCSRF(t, body)
	resp, body = postForm(t, c, h.URL, "/login", form("wrong"))
	want(t, resp, body, http.StatusUnauthorized)
	csrf = formCSRF(t, body)

	resp, body = postForm(t, c, h.URL, "/login", form(s.Admin))
	want(t, resp, body, http.StatusSeeOther)
	if loc := resp.Header.Get("Location"); loc != "/devices" {
		t.Fatalf("to %q", loc)
	}
	var sid *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == "mamori_session" {
			sid = ck
		}
	}
	if sid == nil || !sid.HttpOnly || sid.SameSite != http.SameSiteStrictMode || sid.Path != "/" || sid.MaxAge <= 0 || len(sid.Value) < 40 {
		t.Fatalf("session cookie %+v", sid)
	}
	// The store keeps the id's hash only.
	var n int
	h.Store.DB().QueryRow(`SELECT count(*) FROM sessions WHERE id_hash = ?`, store.HashToken(sid.Value)).Scan(&n)
	var raw int
	h.Store.DB().QueryRow(`SELECT count(*) FROM sessions WHERE id_hash = ? OR csrf = ?`, sid.Value, sid.Value).Scan(&raw)
	if n != 1 || raw != 0 {
		t.Fatalf("sessions by hash %d, by the raw id %d", n, raw)
	}

	resp, body = get(t, c, h.URL, "/devices")
	want(t, resp, body, 200)
	if !strings.Contains(body, `action="/logout"`) {
		t.Fatal("no logout form")
	}
	session := formCSRF(t, body)
	// Logout needs the session's CSRF token and a same-origin request.
	resp, body = postForm(t, c, h.URL, "/logout", url.Values{})
	want(t, resp, body, http.StatusForbidden)
	resp, body = postForm(t, c, h.URL, "/logout", url.Values{"csrf": {csrf}})
	want(t, resp, body, http.StatusForbidden)
	resp, body = postForm(t, c, h.URL, "/logout", url.Values{"csrf": {session}}, "Sec-Fetch-Site", "same-site")
	want(t, resp, body, http.StatusForbidden)
	resp, body = get(t, c, h.URL, "/devices")
	want(t, resp, body, 200)
	resp, body = postForm(t, c, h.URL, "/logout", url.Values{"csrf": {session}})
	want(t, resp, body, http.StatusSeeOther)
	// The old cookie is worth nothing now, even sent again by hand.
	resp, body = get(t, client(t), h.URL, "/devices", "Cookie", "mamori_session="+sid.Value)
	want(t, resp, body, http.StatusSeeOther)

	// A replaced staff token ends the sessions opened with the old one.
	login(t, c, h.URL, s.Admin)
	resp, body = get(t, c, h.URL, "/agents")
	want(t, resp, body, 200)
	h.AdminToken()
	resp, body = get(t, c, h.URL, "/agents")
	want(t, resp, body, http.StatusSeeOther)
}

func TestNextIsLocal(t *testing.T) {
	h := hubtest.New(t)
	s := seed(t, h, time.Now())
	for _, next := range []string{"https://evil.example/", "//evil.example/", "/\\evil.example", "javascript:alert(1)"} {
		c := client(t)
		_, body := get(t, c, h.URL, "/login")
		resp, body := postForm(t, c, h.URL, "/login", url.Values{"csrf": {formCSRF(t, body)}, "token": {s.Admin}, "next": {next}})
		want(t, resp, body, http.StatusSeeOther)
		if loc := resp.Header.Get("Location"); loc != "/" {
			t.Errorf("next=%q: to %q", next, loc)
		}
	}
}

func TestSecureCookieOverTLS(t *testing.T) {
	st, err := sqlstore.Open(context.Background(), "sqlite://"+filepath.Join(t.TempDir(), "hub.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	tok := store.NewToken()
	st.SetStaffToken(context.Background(), "admin", store.HashToken(tok), time.Now())
	srv := httptest.NewTLSServer(hub.New(&hub.Config{SilentAfter: time.Minute}, st, nil).Handler())
	defer srv.Close()
	c := client(t)
	c.Transport = &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	resp, body := get(t, c, srv.URL, "/login")
	want(t, resp, body, 200)
	resp, body = postForm(t, c, srv.URL, "/login", url.Values{"csrf": {formCSRF(t, body)}, "token": {tok}})
	want(t, resp, body, http.StatusSeeOther)
	var ok bool
	for _, ck := range resp.Cookies() {
		if ck.Name == "__Host-mamori_session" {
			ok = ck.Secure && ck.HttpOnly && ck.SameSite == http.SameSiteStrictMode && ck.Path == "/" && ck.Domain == ""
		}
	}
	if !ok {
		t.Fatalf("no Secure __Host- session cookie: %v", resp.Header["Set-Cookie"])
	}
	resp, body = get(t, c, srv.URL, "/")
	want(t, resp, body, 200)
}

func TestHostileStringsEscaped(t *testing.T) {
	h := hubtest.New(t)
	s := seed(t, h, time.Now())
	c := client(t)
	for _, p := range []string{"/", "/violations", "/agents", "/devices", "/violations?agent=pc-001&lang=en"} {
		resp, body := get(t, c, h.URL, p, "Authorization", "Bearer "+s.Admin)
		want(t, resp, body, 200)
		for _, bad := range []string{"<script", "<img", "<iframe", "<svg onload", "<b>", "<i>", "onerror=\"", "\u202E"} {
			if strings.Contains(body, bad) {
				t.Errorf("%s: %q in the page", p, bad)
			}
		}
		if strings.Contains(body, "??") {
			t.Errorf("%s: a text missing from the strings table", p)
		}
	}
	_, body := get(t, c, h.URL, "/violations", "Authorization", "Bearer "+s.Admin)
	for _, good := range []string{
		"&lt;script&gt;document.title=&#39;PWNED&#39;&lt;/script&gt;Evil USB",
		"&#34;&gt;&lt;img src=x onerror=&#34;document.title=&#39;PWNED&#39;&#34;&gt;",
		"invoice⟦U&#43;202E⟧gpj.exe &lt;b&gt;bold&lt;/b&gt; copied",
		"&lt;i&gt;A-0001&lt;/i&gt;",
	} {
		if !strings.Contains(body, good) {
			t.Errorf("/violations lacks %q", good)
		}
	}
	_, body = get(t, c, h.URL, "/agents", "Authorization", "Bearer "+s.Admin)
	if !strings.Contains(body, "pc⟦U&#43;202E⟧exe.&lt;svg onload=alert(1)&gt;") {
		t.Errorf("/agents lacks the hostile host name, escaped")
	}
	_, body = get(t, c, h.URL, "/devices", "Authorization", "Bearer "+s.Admin)
	if !strings.Contains(body, "&lt;iframe src=&#34;https://example.com/&#34;&gt;&lt;/iframe&gt;Stick") {
		t.Errorf("/devices lacks the hostile product, escaped")
	}
}

func TestLanguage(t *testing.T) {
	h := hubtest.New(t)
	s := seed(t, h, time.Now())
	c := client(t)
	auth := []string{"Authorization", "Bearer " + s.Admin}
	_, body := get(t, c, h.URL, "/agents", auth...)
	if !strings.Contains(body, `<html lang="ja">`) || !strings.Contains(body, "機器台帳") || !strings.Contains(body, "停止") {
		t.Fatalf("not Japanese by default:\n%s", body)
	}
	if !strings.Contains(body, `href="/agents?lang=en"`) {
		t.Fatal("no switch to English")
	}
	_, body = get(t, c, h.URL, "/agents?lang=en", auth...)
	if !strings.Contains(body, `<html lang="en">`) || !strings.Contains(body, ">Devices</a>") || !strings.Contains(body, "stopped") {
		t.Fatalf("not English:\n%s", body)
	}
	_, body = get(t, c, h.URL, "/devices", auth...) // the cookie keeps it
	if !strings.Contains(body, `<html lang="en">`) {
		t.Fatal("the language was not kept")
	}
	_, body = get(t, c, h.URL, "/devices?lang=xx", auth...)
	if !strings.Contains(body, `<html lang="en">`) {
		t.Fatal("an unknown lang= changed the language")
	}
}

func TestPages(t *testing.T) {
	h := hubtest.New(t)
	s := seed(t, h, time.Now())
	c := client(t)
	auth := []string{"Authorization", "Bearer " + s.Admin}

	_, body := get(t, c, h.URL, "/?lang=en", auth...)
	if n := strings.Count(body, `<rect class="bar"`); n != 30 {
		t.Errorf("overview: %d bars, want 30", n)
	}
	// 55 violations from pc-001 and one audit_chain_broken from pc-004.
	for _, s := range []string{"Total 56", "Audit chain broken", "Unapproved USB storage"} {
		if !strings.Contains(body, s) {
			t.Errorf("overview lacks %q", s)
		}
	}

	_, body = get(t, c, h.URL, "/violations", auth...)
	if n := strings.Count(body, `<tr class="sev-`); n != 50 {
		t.Errorf("first page: %d rows, want 50", n)
	}
	m := regexp.MustCompile(`href="(/violations\?before=\d+)" rel="next"`).FindStringSubmatch(body)
	if m == nil {
		t.Fatal("no link to older violations")
	}
	_, body = get(t, c, h.URL, strings.ReplaceAll(m[1], "&amp;", "&"), auth...)
	if n := strings.Count(body, `<tr class="sev-`); n != 6 {
		t.Errorf("second page: %d rows, want 6", n)
	}
	if strings.Contains(body, `rel="next"`) {
		t.Error("a next link on the last page")
	}
	_, body = get(t, c, h.URL, "/violations?agent=pc-004", auth...)
	if n := strings.Count(body, `<tr class="sev-`); n != 1 || !strings.Contains(body, "records 3 to 4 are missing") {
		t.Errorf("pc-004: %d rows\n%s", n, body)
	}
	_, body = get(t, c, h.URL, "/violations?kind=media_unencrypted", auth...)
	if n := strings.Count(body, `<tr class="sev-`); n != 14 { // i%4 == 2 for i < 55
		t.Errorf("media_unencrypted: %d rows", n)
	}
	today := time.Now().Format("2006-01-02")
	_, body = get(t, c, h.URL, "/violations?agent=pc-001&since="+today+"&until="+today, auth...)
	if n := strings.Count(body, `<tr class="sev-`); n < 1 || n > 8 { // i%7 == 0 (8 of them), minus those before midnight
		t.Errorf("today: %d rows", n)
	}
	resp, body := get(t, c, h.URL, "/violations?since=yesterday", auth...)
	want(t, resp, body, 400)

	_, body = get(t, c, h.URL, "/agents?lang=en", auth...)
	for _, s := range []string{"pc-001", "pc-002", "pc-003", "pc-004", `badge ok">ok`, `badge silent">silent`,
		`badge stopped">stopped`, `badge broken">broken`, "Microsoft Windows 11 Pro", "never"} {
		if !strings.Contains(body, s) {
			t.Errorf("agents lacks %q", s)
		}
	}

	_, body = get(t, c, h.URL, "/devices?serial=SHARED-SERIAL&lang=en", auth...)
	if !strings.Contains(body, "2 PCs saw it") || !strings.Contains(body, "pc-003") || !strings.Contains(body, "pc-004") || strings.Contains(body, "pc-001") {
		t.Errorf("devices by serial:\n%s", body)
	}
}

// TestCSVExportLinks: the violations and devices pages link to CSV
// exports of what their filters select; the exports are for staff only
// (a session or a staff token), UTF-8 with a BOM for Excel.
func TestCSVExportLinks(t *testing.T) {
	h := hubtest.New(t)
	s := seed(t, h, time.Now())
	c := client(t)
	auth := []string{"Authorization", "Bearer " + s.Admin}

	_, body := get(t, c, h.URL, "/violations?kind=media_unencrypted", auth...)
	m := regexp.MustCompile(`href="(/violations\.csv\?kind=media_unencrypted)" download`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no CSV link with the filter in\n%s", body)
	}
	resp, csv := get(t, c, h.URL, m[1], auth...)
	want(t, resp, csv, 200)
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/csv") || !strings.HasPrefix(csv, "\uFEFF") {
		t.Fatalf("content type %q, starts %q", ct, csv[:min(len(csv), 10)])
	}
	if n := strings.Count(csv, "\r\n"); n != 15 { // header + 14
		t.Fatalf("%d lines, want 15:\n%s", n, csv)
	}
	// Dates of the page's form select whole days in the hub's zone.
	today := time.Now().Format("2006-01-02")
	resp, csv = get(t, c, h.URL, "/violations.csv?since="+today+"&until="+today, auth...)
	want(t, resp, csv, 200)
	resp, csv = get(t, c, h.URL, "/violations.csv?since=yesterday", auth...)
	want(t, resp, csv, 400)

	_, body = get(t, c, h.URL, "/devices", auth...)
	if !strings.Contains(body, `href="/devices.csv" download`) {
		t.Fatalf("no devices CSV link in\n%s", body)
	}
	resp, csv = get(t, c, h.URL, "/devices.csv", auth...)
	want(t, resp, csv, 200)
	if !strings.HasPrefix(csv, "\uFEFFvendor_id,") {
		t.Fatalf("devices.csv starts %q", csv[:min(len(csv), 30)])
	}

	// Without a session: to the login form; an agent's token: 403.
	resp, body = get(t, client(t), h.URL, "/violations.csv")
	want(t, resp, body, http.StatusSeeOther)
	resp, body = get(t, client(t), h.URL, "/devices.csv", "Authorization", "Bearer "+h.AddAgent("pc-csv"))
	want(t, resp, body, http.StatusForbidden)
	// With a session (the link as a browser follows it).
	login(t, c, h.URL, s.Admin)
	resp, csv = get(t, c, h.URL, "/violations.csv")
	want(t, resp, csv, 200)
}
