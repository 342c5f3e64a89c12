// The console's only stylesheet, served from /mlgate/console/static/console.css (CSP: no inline styles or scripts).
export const CONSOLE_CSS = `
:root { --fg: #1d2430; --muted: #5b6574; --line: #d9dee6; --bg: #f5f7fa; --accent: #1f5fae; --danger: #b42318; --ok: #117a43; --warn: #a15c07; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: var(--fg); background: var(--bg); }
header { display: flex; align-items: center; gap: 24px; padding: 0 24px; height: 52px; background: #16202e; color: #fff; }
header .brand { font-weight: 700; letter-spacing: .02em; }
header nav { display: flex; gap: 4px; flex: 1; }
header nav a { color: #c9d3e1; text-decoration: none; padding: 6px 10px; border-radius: 4px; }
header nav a[aria-current="page"], header nav a:hover { color: #fff; background: #2b3950; }
header form { display: flex; align-items: center; gap: 10px; margin: 0; color: #c9d3e1; }
main { padding: 20px 24px 40px; max-width: 1200px; }
h1 { font-size: 20px; margin: 0 0 4px; }
h2 { font-size: 15px; margin: 0; word-break: break-all; }
p.lead { color: var(--muted); margin: 0 0 16px; }
table { width: 100%; border-collapse: collapse; background: #fff; border: 1px solid var(--line); }
th, td { text-align: left; padding: 6px 10px; border-bottom: 1px solid var(--line); vertical-align: middle; }
th { background: #eef1f5; font-weight: 600; color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .03em; }
td.mono, .mono { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 12.5px; word-break: break-all; }
section.user { margin: 0 0 14px; }
section.user .head { display: flex; align-items: center; justify-content: space-between; gap: 12px; padding: 8px 10px; background: #fff; border: 1px solid var(--line); border-bottom: 0; }
form.inline { display: inline-flex; gap: 6px; align-items: center; margin: 0; }
td.nowrap, .nowrap { white-space: nowrap; word-break: normal; }
td.details { width: 50%; }
form.filters { display: flex; gap: 8px; align-items: end; margin: 0 0 16px; flex-wrap: wrap; }
label { display: flex; flex-direction: column; gap: 2px; font-size: 12px; color: var(--muted); }
input[type=text], input[type=password], input:not([type]), select { font: inherit; padding: 5px 8px; border: 1px solid #b8c0cc; border-radius: 4px; background: #fff; min-width: 180px; }
button { font: inherit; padding: 5px 12px; border: 1px solid var(--accent); border-radius: 4px; background: var(--accent); color: #fff; cursor: pointer; }
button.secondary { background: #fff; color: var(--accent); }
button.danger { background: #fff; color: var(--danger); border-color: var(--danger); }
header button { background: transparent; border-color: #6d7b91; color: #fff; padding: 3px 10px; }
.pager { display: flex; gap: 12px; margin: 12px 0; }
.pager a { color: var(--accent); }
.flash { padding: 8px 12px; border-radius: 4px; margin: 0 0 16px; background: #e7f4ec; color: var(--ok); border: 1px solid #b7dfc6; }
.error { padding: 8px 12px; border-radius: 4px; margin: 0 0 12px; background: #fdecea; color: var(--danger); border: 1px solid #f4c3bd; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px; font-weight: 600; }
.badge.up { background: #e7f4ec; color: var(--ok); }
.badge.down { background: #fdecea; color: var(--danger); }
.badge.ejected { background: #fff4e0; color: var(--warn); }
.badge.muted { background: #eef1f5; color: var(--muted); }
.empty { padding: 16px; background: #fff; border: 1px solid var(--line); color: var(--muted); }
.card { max-width: 380px; margin: 72px auto; background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 24px 28px; }
.card h1 { margin-bottom: 16px; }
.card form { display: flex; flex-direction: column; gap: 12px; }
.card input { width: 100%; }
.note { color: var(--muted); font-size: 12px; margin-top: 14px; }
`;
