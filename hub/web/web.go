// Package web is mamori-hub's pages for security staff: an overview
// (violations per day as a chart, counts by kind and by PC state), the
// violations with filters, the PCs with their state and audit chain, and
// the device inventory. Japanese by default, English with ?lang=en (kept
// in a cookie).
//
// The pages are server-rendered with html/template from templates and a
// CSS file embedded in the binary; they use no JavaScript and load
// nothing from elsewhere (the Content-Security-Policy forbids scripts).
// Every string an agent sent is escaped by html/template and shown with
// its control and bidi formatting characters made visible (see show).
//
// Staff authenticate with their token as an "Authorization: Bearer"
// header, or through the login form, which opens a session: a random id
// in an HttpOnly, SameSite=Strict cookie (Secure and __Host- prefixed
// over TLS) whose SHA-256 only is kept in the store (store.Sessions), so
// a hub restart logs no one out and several hubs share the sessions.
// Every POST is checked against cross-origin requests (Sec-Fetch-Site,
// Origin) and carries a CSRF token in a hidden field: the session's own
// for logout, a double-submit cookie's for login. Agent tokens get 403.
package web

import (
	"bytes"
	"crypto/subtle"
	"embed"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/mamori-agent/mamori/hub/store"
)

//go:embed templates static
var files embed.FS

// DefaultSessionTTL is how long a login lasts.
const DefaultSessionTTL = 12 * time.Hour

// maxFormBytes bounds a form's body.
const maxFormBytes = 8 << 10

// contentSecurityPolicy allows the page's own CSS and nothing else: no
// script of any origin, no frames, forms only to the hub.
const contentSecurityPolicy = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; " +
	"frame-ancestors 'none'; base-uri 'none'"

// Options configure the pages.
type Options struct {
	Store  store.Store
	Logger *slog.Logger
	// SilentAfter is config silent_after.
	SilentAfter time.Duration
	// SessionTTL is how long a login lasts (DefaultSessionTTL when 0).
	SessionTTL time.Duration
	// Now is the hub's clock (time.Now when nil).
	Now func() time.Time
	// Location is the zone times are shown and days counted in
	// (time.Local when nil).
	Location *time.Location
	// ViolationsCSV and DevicesCSV write the CSV exports (the API's, with
	// its query: since and until in RFC 3339); the pages serve them at
	// /violations.csv and /devices.csv to staff, with the pages' filters.
	// Nil: no export links.
	ViolationsCSV, DevicesCSV http.HandlerFunc
}

// Web serves the pages.
type Web struct {
	o     Options
	mux   *http.ServeMux
	pages map[string]*template.Template
	cop   *http.CrossOriginProtection
}

// New returns the pages over o.Store.
func New(o Options) *Web {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.SilentAfter <= 0 {
		o.SilentAfter = 10 * time.Minute
	}
	if o.SessionTTL <= 0 {
		o.SessionTTL = DefaultSessionTTL
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Location == nil {
		o.Location = time.Local
	}
	s := &Web{o: o, mux: http.NewServeMux(), pages: map[string]*template.Template{}, cop: http.NewCrossOriginProtection()}
	funcs := template.FuncMap{"show": show, "time": s.fmtTime}
	for _, p := range []string{"login", "error", "overview", "violations", "agents", "devices"} {
		s.pages[p] = template.Must(template.New("layout.html").Funcs(funcs).ParseFS(files, "templates/layout.html", "templates/"+p+".html"))
	}
	static, _ := fs.Sub(files, "static")
	s.mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	s.mux.HandleFunc("GET /login", s.loginForm)
	s.mux.HandleFunc("POST /login", s.login)
	s.mux.HandleFunc("POST /logout", s.logout)
	s.mux.HandleFunc("GET /{$}", s.staff(s.overview))
	s.mux.HandleFunc("GET /violations", s.staff(s.violations))
	s.mux.HandleFunc("GET /agents", s.staff(s.agents))
	s.mux.HandleFunc("GET /devices", s.staff(s.devices))
	if o.ViolationsCSV != nil {
		s.mux.HandleFunc("GET /violations.csv", s.staff(s.violationsCSV))
	}
	if o.DevicesCSV != nil {
		s.mux.HandleFunc("GET /devices.csv", s.staff(s.devicesCSV))
	}
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.fail(w, r, nil, http.StatusNotFound, "error_not_found", "")
	})
	return s
}

// ServeHTTP serves the pages with headers that keep them from being
// framed, sniffed, cached or running any script.
func (s *Web) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	s.mux.ServeHTTP(w, r)
}

// page is what every template gets.
type page struct {
	L lang
	// Nav is the active menu entry ("" on login and error pages).
	Nav string
	// Staff is who is signed in ("" when no one); CSRF the session's
	// token for the logout form ("" with a Bearer header: no logout).
	Staff string
	CSRF  string
	// SwitchURL is this page in the other language.
	SwitchURL string
	// Error is a message key shown above the content, Detail beside it.
	Error, Detail string
	Data          any
}

// newPage starts the page of a request.
func newPage(w http.ResponseWriter, r *http.Request, nav string) *page {
	l := chooseLang(w, r)
	return &page{L: l, Nav: nav, SwitchURL: switchURL(r, l.Other())}
}

// render executes the page template name with p.
func (s *Web) render(w http.ResponseWriter, r *http.Request, status int, name string, p *page) {
	var buf bytes.Buffer
	if err := s.pages[name].Execute(&buf, p); err != nil {
		s.o.Logger.Error("render page", "page", name, "err", err)
		http.Error(w, "the hub could not render this page; see its log", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		w.Write(buf.Bytes())
	}
}

// fail shows an error page: the text of key, and detail.
func (s *Web) fail(w http.ResponseWriter, r *http.Request, p *page, status int, key, detail string) {
	if p == nil {
		p = newPage(w, r, "")
	}
	p.Error, p.Detail = key, detail
	s.render(w, r, status, "error", p)
}

// internal logs err and shows a 500 page without its details.
func (s *Web) internal(w http.ResponseWriter, r *http.Request, p *page, err error) {
	s.o.Logger.Error("page failed", "path", r.URL.Path, "err", err)
	s.fail(w, r, p, http.StatusInternalServerError, "error_internal", "")
}

// pageHandler is a page's handler, called for signed-in staff.
type pageHandler func(w http.ResponseWriter, r *http.Request, p *page)

// staff lets only security staff through to h: a staff Bearer token or
// a live session. Without either a browser is sent to the login form;
// a wrong token gets 401, an agent token 403.
func (s *Web) staff(h pageHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p := newPage(w, r, "")
		if auth := r.Header.Get("Authorization"); auth != "" {
			scheme, token, _ := strings.Cut(auth, " ")
			token = strings.TrimSpace(token)
			if !strings.EqualFold(scheme, "Bearer") || token == "" || len(token) > 512 {
				w.Header().Set("WWW-Authenticate", `Bearer realm="mamori-hub"`)
				s.fail(w, r, p, http.StatusUnauthorized, "error_unauthorized", "")
				return
			}
			who, err := s.o.Store.Authenticate(r.Context(), store.HashToken(token))
			switch {
			case errors.Is(err, store.ErrNotFound):
				w.Header().Set("WWW-Authenticate", `Bearer realm="mamori-hub", error="invalid_token"`)
				s.fail(w, r, p, http.StatusUnauthorized, "error_unauthorized", "")
				return
			case err != nil:
				s.internal(w, r, p, err)
				return
			case who.Role != store.RoleStaff:
				s.fail(w, r, p, http.StatusForbidden, "error_forbidden", "")
				return
			}
			p.Staff = who.Name
			h(w, r, p)
			return
		}
		ss, err := s.session(r)
		if errors.Is(err, store.ErrNotFound) {
			next := r.URL.Path
			if r.URL.RawQuery != "" {
				next += "?" + r.URL.RawQuery
			}
			http.Redirect(w, r, "/login?"+url.Values{"next": {next}}.Encode(), http.StatusSeeOther)
			return
		}
		if err != nil {
			s.internal(w, r, p, err)
			return
		}
		p.Staff, p.CSRF = ss.Staff, ss.CSRF
		h(w, r, p)
	}
}

// sessionCookie is the name of the session cookie: with the __Host-
// prefix over TLS, so that it is Secure, host-only and for path /.
func sessionCookie(r *http.Request) string {
	if r.TLS != nil {
		return "__Host-mamori_session"
	}
	return "mamori_session"
}

// loginCookie holds the login form's CSRF token (double submit).
func loginCookie(r *http.Request) string {
	if r.TLS != nil {
		return "__Host-mamori_login"
	}
	return "mamori_login"
}

// setCookie sets (maxAge > 0) or clears (maxAge < 0) a cookie of the
// pages: HttpOnly, SameSite=Strict, path /, Secure over TLS.
func setCookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: "/", MaxAge: maxAge,
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
}

// session returns the request's live session (store.ErrNotFound when
// there is none).
func (s *Web) session(r *http.Request) (store.Session, error) {
	c, err := r.Cookie(sessionCookie(r))
	if err != nil || c.Value == "" || len(c.Value) > 128 {
		return store.Session{}, store.ErrNotFound
	}
	return s.o.Store.Session(r.Context(), store.HashToken(c.Value), s.o.Now())
}

// loginData is the login template's data.
type loginData struct {
	CSRF, Next string
}

// loginForm is GET /login. It sets a fresh double-submit CSRF cookie
// and puts the same token in the form.
func (s *Web) loginForm(w http.ResponseWriter, r *http.Request) {
	p := newPage(w, r, "")
	s.showLogin(w, r, p, http.StatusOK, safeNext(r.URL.Query().Get("next")))
}

func (s *Web) showLogin(w http.ResponseWriter, r *http.Request, p *page, status int, next string) {
	tok := store.NewToken()
	setCookie(w, r, loginCookie(r), tok, 3600)
	p.Data = loginData{CSRF: tok, Next: next}
	s.render(w, r, status, "login", p)
}

// login is POST /login: the staff token in, a session cookie out.
func (s *Web) login(w http.ResponseWriter, r *http.Request) {
	p := newPage(w, r, "")
	if err := s.cop.Check(r); err != nil {
		s.fail(w, r, p, http.StatusForbidden, "error_cross_origin", "")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		s.fail(w, r, p, http.StatusBadRequest, "error_bad_request", err.Error())
		return
	}
	next := safeNext(r.PostForm.Get("next"))
	c, err := r.Cookie(loginCookie(r))
	if err != nil || !sameToken(c.Value, r.PostForm.Get("csrf")) {
		p.Error = "login_expired"
		s.showLogin(w, r, p, http.StatusForbidden, next)
		return
	}
	token := strings.TrimSpace(r.PostForm.Get("token"))
	var who store.Principal
	if token != "" && len(token) <= 512 {
		who, err = s.o.Store.Authenticate(r.Context(), store.HashToken(token))
	} else {
		err = store.ErrNotFound
	}
	switch {
	case errors.Is(err, store.ErrNotFound):
		p.Error = "login_bad_token"
		s.showLogin(w, r, p, http.StatusUnauthorized, next)
		return
	case err != nil:
		s.internal(w, r, p, err)
		return
	case who.Role != store.RoleStaff:
		p.Error = "login_agent_token"
		s.showLogin(w, r, p, http.StatusForbidden, next)
		return
	}
	id, now := store.NewToken(), s.o.Now()
	if err := s.o.Store.CreateSession(r.Context(), store.Session{
		IDHash: store.HashToken(id), Staff: who.Name, TokenHash: store.HashToken(token), CSRF: store.NewToken(),
		Created: now, Expires: now.Add(s.o.SessionTTL),
	}); err != nil {
		s.internal(w, r, p, err)
		return
	}
	s.o.Logger.Info("staff logged in", "staff", who.Name)
	setCookie(w, r, sessionCookie(r), id, int(s.o.SessionTTL/time.Second))
	setCookie(w, r, loginCookie(r), "", -1)
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// logout is POST /logout: ends the session.
func (s *Web) logout(w http.ResponseWriter, r *http.Request) {
	p := newPage(w, r, "")
	if err := s.cop.Check(r); err != nil {
		s.fail(w, r, p, http.StatusForbidden, "error_cross_origin", "")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		s.fail(w, r, p, http.StatusBadRequest, "error_bad_request", err.Error())
		return
	}
	ss, err := s.session(r)
	if errors.Is(err, store.ErrNotFound) {
		setCookie(w, r, sessionCookie(r), "", -1)
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	if err != nil {
		s.internal(w, r, p, err)
		return
	}
	if !sameToken(ss.CSRF, r.PostForm.Get("csrf")) {
		s.fail(w, r, p, http.StatusForbidden, "error_csrf", "")
		return
	}
	if err := s.o.Store.DeleteSession(r.Context(), ss.IDHash); err != nil {
		s.internal(w, r, p, err)
		return
	}
	setCookie(w, r, sessionCookie(r), "", -1)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// sameToken compares a CSRF token with what a form sent, in constant
// time; an empty token never matches.
func sameToken(want, got string) bool {
	return want != "" && subtle.ConstantTimeCompare([]byte(want), []byte(got)) == 1
}

// safeNext is where to go after login: a path on this hub, "/" for
// anything else (an open redirect otherwise).
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") ||
		strings.ContainsAny(next, "\r\n\t\\") {
		return "/"
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" {
		return "/"
	}
	return next
}
