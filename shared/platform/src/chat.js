// The assistant pages' script (site's "Ask the shop", the portal's assistant), shared through
// omneuro_platform::web::CHAT_SCRIPT. Progressive enhancement: the page's form works without it.
// With it, the reply streams in (server-sent events read from a POST to the form's action +
// "/stream" with fetch) instead of reloading the page. The page provides #chat (the list of
// messages, li.mine / li.reply) and #chat-form (fields csrf and text); errors show in the reply.
(function () {
  var form = document.getElementById('chat-form');
  var list = document.getElementById('chat');
  if (!form || !window.fetch || !window.TextDecoder || !window.ReadableStream) return;
  function bubble(cls, text) {
    var li = document.createElement('li');
    li.className = cls;
    li.textContent = text;
    list.appendChild(li);
    return li;
  }
  function safe(url) { return typeof url === 'string' && url.charAt(0) === '/' && url.charAt(1) !== '/' && url.indexOf('\\') < 0; }
  function sources(li, items) {
    if (!items || !items.length) return;
    var p = document.createElement('p');
    p.className = 'sources';
    p.appendChild(document.createTextNode('Sources: '));
    items.forEach(function (s) {
      var el;
      if (safe(s.url)) { el = document.createElement('a'); el.href = s.url; } else { el = document.createElement('cite'); }
      el.textContent = s.label;
      p.appendChild(el);
    });
    li.appendChild(p);
  }
  form.addEventListener('submit', function (e) {
    var text = form.elements.text.value.trim();
    if (!text) return;
    e.preventDefault();
    var old = document.getElementById('chat-error');
    if (old) old.remove();
    var button = form.querySelector('button');
    button.disabled = true;
    bubble('mine', text);
    var reply = bubble('reply streaming', '');
    var body = new URLSearchParams();
    body.set('csrf', form.elements.csrf.value);
    body.set('text', text);
    form.elements.text.value = '';
    var finished = false;
    function handle(event, data) {
      var d;
      try { d = JSON.parse(data); } catch (_) { return; }
      if (event === 'token') { reply.textContent += d.text; }
      else if (event === 'tool') { reply.setAttribute('data-tool', d.name); }
      else if (event === 'done') {
        finished = true;
        reply.textContent = d.text;
        reply.className = 'reply';
        reply.id = 'latest';
        sources(reply, d.sources);
      } else if (event === 'error') {
        finished = true;
        reply.className = 'reply error';
        reply.textContent = d.message;
      }
    }
    fetch(form.getAttribute('action') + '/stream', {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'accept': 'text/event-stream' },
      body: body.toString()
    }).then(function (resp) {
      if (!resp.ok || !resp.body) throw new Error('status ' + resp.status);
      var reader = resp.body.getReader();
      var decoder = new TextDecoder();
      var buf = '';
      function pump() {
        return reader.read().then(function (r) {
          if (r.done) return;
          buf += decoder.decode(r.value, { stream: true });
          var at;
          while ((at = buf.indexOf('\n\n')) >= 0) {
            var chunk = buf.slice(0, at);
            buf = buf.slice(at + 2);
            var event = 'message', data = '';
            chunk.split('\n').forEach(function (line) {
              if (line.indexOf('event: ') === 0) event = line.slice(7);
              else if (line.indexOf('data: ') === 0) data += line.slice(6);
            });
            handle(event, data);
          }
          return pump();
        });
      }
      return pump();
    }).catch(function () {
      finished = true;
      reply.className = 'reply error';
      reply.textContent = 'The message could not be sent. Please reload the page and try again.';
    }).then(function () {
      if (!finished) { reply.className = 'reply error'; reply.textContent = 'The reply was cut off. Please reload the page.'; }
      button.disabled = false;
      form.elements.text.focus();
    });
  });
})();
