// Web chat client: sends questions and button presses to /chat/api/message, shows the
// replies with their choice buttons and links, and polls /chat/api/updates for messages
// that arrive later (the community team's answer).
(function () {
  "use strict";
  var root = document.getElementById("chat");
  var log = document.getElementById("log");
  var form = document.getElementById("ask");
  var input = document.getElementById("q");
  var sendButton = document.getElementById("send");
  var ward = root.getAttribute("data-ward") || "";
  var POLL_MS = 15000;
  var busy = false;

  function scrollDown() { log.scrollTop = log.scrollHeight; }

  function bubble(cls) {
    var li = document.createElement("li");
    li.className = "msg " + cls;
    log.appendChild(li);
    return li;
  }

  function addText(li, text) {
    var p = document.createElement("p");
    p.className = "text";
    p.textContent = text;
    li.appendChild(p);
  }

  function addUser(text) {
    addText(bubble("user"), text);
    scrollDown();
  }

  function addNotice(text) {
    addText(bubble("notice"), text);
    scrollDown();
  }

  function addReply(reply) {
    var li = bubble(reply.kind === "team_reply" ? "bot team" : (reply.kind === "notice" ? "bot notice" : "bot"));
    addText(li, reply.text);
    if (reply.links && reply.links.length) {
      var ul = document.createElement("ul");
      ul.className = "links";
      reply.links.forEach(function (link) {
        if (!/^https:\/\//.test(link.url)) { return; }
        var a = document.createElement("a");
        a.href = link.url;
        a.target = "_blank";
        a.rel = "noopener noreferrer";
        a.textContent = "🔗 " + link.label;
        var item = document.createElement("li");
        item.appendChild(a);
        ul.appendChild(item);
      });
      li.appendChild(ul);
    }
    var buttons = [];
    (reply.buttons || []).forEach(function (row) { buttons = buttons.concat(row); });
    if (buttons.length) {
      var box = document.createElement("div");
      box.className = "choices";
      buttons.forEach(function (b) {
        var button = document.createElement("button");
        button.type = "button";
        button.className = "choice";
        button.setAttribute("data-action", b.action);
        button.textContent = b.label;
        if (b.action.indexOf("fb:up:") === 0) { button.setAttribute("aria-label", "Hữu ích"); button.className += " fb"; }
        if (b.action.indexOf("fb:down:") === 0) { button.setAttribute("aria-label", "Chưa hữu ích"); button.className += " fb"; }
        box.appendChild(button);
      });
      li.appendChild(box);
    }
    scrollDown();
  }

  function post(url, body) {
    return fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Accept": "application/json" },
      body: JSON.stringify(body)
    }).then(function (r) { return r.json(); });
  }

  function send(payload, echo) {
    if (busy) { return; }
    busy = true;
    sendButton.disabled = true;
    addUser(echo);
    var typing = bubble("bot typing");
    typing.textContent = "Đang trả lời…";
    scrollDown();
    payload.ward = ward;
    post("/chat/api/message", payload)
      .then(function (body) {
        typing.remove();
        if (body.replies) { body.replies.forEach(addReply); } else { addNotice(body.error || "Có lỗi, bạn vui lòng thử lại."); }
      })
      .catch(function () {
        typing.remove();
        addNotice("Không kết nối được. Bạn kiểm tra mạng rồi thử lại nhé.");
      })
      .then(function () { busy = false; sendButton.disabled = false; });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = input.value.trim();
    if (!text) { input.focus(); return; }
    input.value = "";
    send({ text: text }, text);
    input.focus();
  });

  input.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit ? form.requestSubmit() : form.dispatchEvent(new Event("submit"));
    }
  });

  log.addEventListener("click", function (event) {
    var button = event.target.closest("button.choice");
    if (!button || button.disabled) { return; }
    var action = button.getAttribute("data-action");
    if (action.indexOf("fb:") === 0) {  // one vote per answer
      button.parentNode.querySelectorAll("button.fb").forEach(function (b) { b.disabled = true; });
    }
    send({ action: action }, button.getAttribute("aria-label") || button.textContent);
  });

  function poll() {
    if (document.hidden) { return; }
    post("/chat/api/updates", {})
      .then(function (body) { (body.replies || []).forEach(addReply); })
      .catch(function () { /* try again later */ });
  }

  poll();
  window.setInterval(poll, POLL_MS);
})();
