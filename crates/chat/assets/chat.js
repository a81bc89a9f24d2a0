// The room page: one WebSocket, reconnecting with the last sequence number seen, so nothing is
// missed or shown twice. Every piece of text goes into the page with textContent, never HTML.
"use strict";
(function () {
  const page = document.getElementById("room");
  const room = page.dataset.room;
  const wanted = page.dataset.name;
  const log = document.getElementById("log");
  const members = document.getElementById("members");
  const status = document.getElementById("status");
  const form = document.getElementById("send");
  const input = document.getElementById("text");
  let socket = null;
  let lastSeq = null;
  let myName = wanted;
  let retry = 500;

  function line(parts, cls) {
    const item = document.createElement("li");
    if (cls) item.className = cls;
    for (const [text, partCls] of parts) {
      const span = document.createElement("span");
      if (partCls) span.className = partCls;
      span.textContent = text;
      item.appendChild(span);
    }
    const stick = log.scrollTop + log.clientHeight >= log.scrollHeight - 8;
    log.appendChild(item);
    if (stick) log.scrollTop = log.scrollHeight;
  }

  function showMembers(names) {
    members.replaceChildren(...names.map((name) => {
      const item = document.createElement("li");
      item.textContent = name;
      return item;
    }));
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    socket = new WebSocket(scheme + "//" + location.host + "/ws");
    status.textContent = "connecting…";
    socket.onopen = () => {
      const join = { type: "join", room: room, name: myName };
      if (lastSeq !== null) join.last_seq = lastSeq;
      socket.send(JSON.stringify(join));
    };
    socket.onmessage = (event) => {
      const frame = JSON.parse(event.data);
      switch (frame.type) {
        case "joined":
          myName = frame.name;
          retry = 500;
          status.textContent = "connected as " + frame.name;
          showMembers(frame.members);
          if (lastSeq === null) lastSeq = 0;
          break;
        case "message":
          if (frame.seq <= lastSeq) break;
          lastSeq = frame.seq;
          line([[new Date(frame.ts).toLocaleTimeString(), "time"], [frame.name, "name"], [frame.text, "text"]]);
          break;
        case "presence":
          showMembers(frame.members);
          break;
        case "error":
          line([[frame.detail, null]], "notice error");
          break;
      }
    };
    socket.onclose = (event) => {
      status.textContent = "disconnected (" + (event.reason || event.code) + "); reconnecting…";
      if (event.code === 1008 || event.code === 1009) {
        line([["disconnected: " + event.reason, null]], "notice error");
      }
      setTimeout(connect, retry);
      retry = Math.min(retry * 2, 10000);
    };
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (socket && socket.readyState === WebSocket.OPEN && input.value.trim() !== "") {
      socket.send(JSON.stringify({ type: "send", text: input.value }));
      input.value = "";
    }
  });
  connect();
})();
