-- wrk script: POST /notes/create/ as a signed-in user. Set NOTES_SESSION and NOTES_CSRF
-- (see BENCHMARKS.md for how bench.sh obtains them).
local session = os.getenv("NOTES_SESSION")
local csrf = os.getenv("NOTES_CSRF")
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Cookie"] = "notes_session=" .. session
wrk.body = "csrf_token=" .. csrf .. "&name=benchmark+note&text=Written+by+wrk.&pad="
