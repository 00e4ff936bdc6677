package web

import (
	"net/http"
	"net/url"
	"time"

	"github.com/mamori-agent/mamori/wire"
)

// lang is the language a page is shown in: "ja" (the default) or "en".
type lang string

// Languages.
const (
	langJA lang = "ja"
	langEN lang = "en"
)

// langCookie keeps the language chosen with ?lang=.
const langCookie = "mamori_lang"

// T returns the text of key in l ("??key" for a key missing from the
// table, which a test rules out).
func (l lang) T(key string) string {
	if s, ok := texts[l][key]; ok {
		return s
	}
	return "??" + key
}

// Other is the language the switch offers.
func (l lang) Other() lang {
	if l == langJA {
		return langEN
	}
	return langJA
}

// Kind is the title of a violation kind in l; the kind itself for one
// the table does not know.
func (l lang) Kind(kind string) string {
	if kind == wire.KindAuditChainBroken {
		return l.T("kind_audit_chain_broken")
	}
	k, ok := wire.KindOf(kind)
	if !ok {
		return kind
	}
	if l == langEN {
		return k.TitleEN
	}
	return k.TitleJA
}

// State is the name of an agent state (ok, silent, stopped) or chain
// state (intact, broken) in l.
func (l lang) State(s string) string { return l.T("state_" + s) }

// Date formats a day as the chart's axis shows it.
func (l lang) Date(t time.Time) string {
	if l == langEN {
		return t.Format("Jan 2")
	}
	return t.Format("1/2")
}

// chooseLang picks the request's language: ?lang= (then kept in a
// cookie), else the cookie, else Japanese.
func chooseLang(w http.ResponseWriter, r *http.Request) lang {
	if q := lang(r.URL.Query().Get("lang")); q == langJA || q == langEN {
		http.SetCookie(w, &http.Cookie{Name: langCookie, Value: string(q), Path: "/", MaxAge: 365 * 24 * 3600,
			HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteLaxMode})
		return q
	}
	if c, err := r.Cookie(langCookie); err == nil && (lang(c.Value) == langJA || lang(c.Value) == langEN) {
		return lang(c.Value)
	}
	return langJA
}

// switchURL is the request's URL with lang= set to l.
func switchURL(r *http.Request, l lang) string {
	q := r.URL.Query()
	q.Set("lang", string(l))
	u := url.URL{Path: r.URL.Path, RawQuery: q.Encode()}
	return u.String()
}

// texts are the pages' strings in both languages; every key is in both
// (a test checks).
var texts = map[lang]map[string]string{
	langJA: {
		"app":                     "mamori-hub",
		"nav_overview":            "概要",
		"nav_violations":          "違反",
		"nav_agents":              "端末",
		"nav_devices":             "機器台帳",
		"logout":                  "ログアウト",
		"signed_in_as":            "ログイン中:",
		"bearer_note":             "（Bearer トークン）",
		"switch_lang":             "English",
		"login_title":             "ログイン",
		"login_intro":             "セキュリティ担当者用のトークン（mamori-hub admin token が表示したもの）を入力してください。",
		"login_token":             "トークン",
		"login_submit":            "ログイン",
		"login_bad_token":         "トークンが正しくないか、無効になっています。",
		"login_agent_token":       "端末用のトークンではログインできません。担当者用のトークンを使ってください。",
		"login_expired":           "フォームの有効期限が切れました。もう一度ログインしてください。",
		"error_title":             "エラー",
		"error_forbidden":         "このページを表示する権限がありません（端末用のトークンでは表示できません）。",
		"error_unauthorized":      "トークンが正しくないか、無効になっています。",
		"error_cross_origin":      "別のサイトからの送信は受け付けません。",
		"error_csrf":              "フォームの確認トークンが一致しません。ページを再読み込みしてください。",
		"error_not_found":         "ページが見つかりません。",
		"error_bad_request":       "指定が正しくありません:",
		"error_internal":          "処理できませんでした。ハブのログを確認してください。",
		"overview_title":          "概要",
		"chart_title":             "日別の違反件数（過去30日）",
		"chart_label":             "過去30日の日別違反件数の棒グラフ",
		"by_kind_title":           "種類別（過去30日）",
		"by_state_title":          "端末の状態",
		"latest_title":            "最新の違反",
		"all_violations":          "すべての違反",
		"total":                   "合計",
		"count":                   "件数",
		"none":                    "ありません。",
		"violations_title":        "違反",
		"filter":                  "絞り込み",
		"filter_agent":            "端末",
		"filter_kind":             "種類",
		"filter_since":            "開始日",
		"filter_until":            "終了日",
		"filter_all":              "すべて",
		"filter_apply":            "表示",
		"filter_clear":            "解除",
		"export_csv":              "CSV で書き出す（Excel 用、絞り込みの全件）",
		"newer":                   "← 最新へ",
		"older":                   "さらに古い違反 →",
		"col_time":                "発生日時",
		"col_agent":               "端末",
		"col_asset":               "資産番号",
		"col_kind":                "種類",
		"col_severity":            "重大度",
		"col_article":             "条項",
		"col_device":              "機器",
		"col_serial":              "シリアル番号",
		"col_message":             "内容",
		"col_last_seen":           "最終通信",
		"col_state":               "状態",
		"col_chain":               "監査ログ",
		"col_host":                "ホスト情報",
		"col_version":             "版",
		"col_queue":               "未送信",
		"col_dropped":             "欠落",
		"col_vendor_product":      "ベンダー:製品 ID",
		"col_product":             "製品名",
		"col_pcs":                 "確認された端末",
		"col_first_seen":          "初回",
		"col_count":               "回数",
		"agents_title":            "端末",
		"agents_intro":            "最終通信から silent_after を過ぎた端末は「応答なし」、正常に停止した端末は「停止」と表示されます。",
		"revoked":                 "失効",
		"never":                   "未通信",
		"boot":                    "起動",
		"host_id":                 "ホスト ID",
		"devices_title":           "機器台帳",
		"devices_intro":           "どの端末でどの USB 機器（シリアル番号）が確認されたか。",
		"devices_filter_serial":   "シリアル番号",
		"devices_filter_vendor":   "ベンダー ID",
		"devices_filter_product":  "製品 ID",
		"seen_on_many":            "台の端末で確認",
		"no_serial":               "（シリアル番号なし）",
		"state_ok":                "正常",
		"state_silent":            "応答なし",
		"state_stopped":           "停止",
		"state_intact":            "正常",
		"state_broken":            "改ざんの疑い",
		"chain_broken_agents":     "監査ログ改ざんの疑いがある端末",
		"kind_audit_chain_broken": "監査ログの連続性の破損",
	},
	langEN: {
		"app":                     "mamori-hub",
		"nav_overview":            "Overview",
		"nav_violations":          "Violations",
		"nav_agents":              "PCs",
		"nav_devices":             "Devices",
		"logout":                  "Log out",
		"signed_in_as":            "Signed in as",
		"bearer_note":             "(Bearer token)",
		"switch_lang":             "日本語",
		"login_title":             "Log in",
		"login_intro":             "Enter a security staff token (as printed by mamori-hub admin token).",
		"login_token":             "Token",
		"login_submit":            "Log in",
		"login_bad_token":         "The token is wrong or no longer valid.",
		"login_agent_token":       "A PC's token cannot log in; use a staff token.",
		"login_expired":           "The form expired. Please log in again.",
		"error_title":             "Error",
		"error_forbidden":         "You may not see this page (a PC's token cannot).",
		"error_unauthorized":      "The token is wrong or no longer valid.",
		"error_cross_origin":      "Forms sent from another site are refused.",
		"error_csrf":              "The form's check token does not match. Please reload the page.",
		"error_not_found":         "No such page.",
		"error_bad_request":       "Bad request:",
		"error_internal":          "The hub could not do this; see its log.",
		"overview_title":          "Overview",
		"chart_title":             "Violations per day (last 30 days)",
		"chart_label":             "Bar chart of violations per day over the last 30 days",
		"by_kind_title":           "By kind (last 30 days)",
		"by_state_title":          "PCs by state",
		"latest_title":            "Latest violations",
		"all_violations":          "All violations",
		"total":                   "Total",
		"count":                   "Count",
		"none":                    "None.",
		"violations_title":        "Violations",
		"filter":                  "Filter",
		"filter_agent":            "PC",
		"filter_kind":             "Kind",
		"filter_since":            "From",
		"filter_until":            "To",
		"filter_all":              "All",
		"filter_apply":            "Show",
		"filter_clear":            "Clear",
		"export_csv":              "Export as CSV (for Excel; everything the filters select)",
		"newer":                   "← Newest",
		"older":                   "Older violations →",
		"col_time":                "Time",
		"col_agent":               "PC",
		"col_asset":               "Asset ID",
		"col_kind":                "Kind",
		"col_severity":            "Severity",
		"col_article":             "Article",
		"col_device":              "Device",
		"col_serial":              "Serial",
		"col_message":             "Message",
		"col_last_seen":           "Last seen",
		"col_state":               "State",
		"col_chain":               "Audit chain",
		"col_host":                "Host facts",
		"col_version":             "Version",
		"col_queue":               "Queued",
		"col_dropped":             "Dropped",
		"col_vendor_product":      "Vendor:product ID",
		"col_product":             "Product",
		"col_pcs":                 "Seen on",
		"col_first_seen":          "First seen",
		"col_count":               "Times",
		"agents_title":            "PCs",
		"agents_intro":            "A PC not heard from for silent_after is silent; one that stopped cleanly is stopped.",
		"revoked":                 "revoked",
		"never":                   "never",
		"boot":                    "boot",
		"host_id":                 "host id",
		"devices_title":           "Device inventory",
		"devices_intro":           "Which PCs saw which USB device (and serial).",
		"devices_filter_serial":   "Serial",
		"devices_filter_vendor":   "Vendor ID",
		"devices_filter_product":  "Product ID",
		"seen_on_many":            "PCs saw it",
		"no_serial":               "(no serial)",
		"state_ok":                "ok",
		"state_silent":            "silent",
		"state_stopped":           "stopped",
		"state_intact":            "intact",
		"state_broken":            "broken",
		"chain_broken_agents":     "PCs whose audit chain is broken",
		"kind_audit_chain_broken": "Audit chain broken",
	},
}
