// devreload's live-reload client, injected into HTML pages by the LiveReload wrappers.
// The tag that carries it says which worker made the page (data-boot) and where the
// event stream is (data-url). A page made by an older worker reloads once, as soon as
// the new worker answers: when the new page has the same <head> and neither page runs a
// script of its own, only its <body> is swapped in (scroll kept), else the tab reloads. A
// changed stylesheet is swapped in place. A worker that stops for a restart says
// "reloading" first, and the page asks the next one at once.
(function () {
  "use strict";
  // One client per page: a second copy (an HTML fragment that htmx or jQuery swapped in
  // with its script run) leaves the page to the first.
  if (window.devreloadClient) {
    return;
  }
  window.devreloadClient = true;
  var tag = document.currentScript;
  var boot = tag.getAttribute("data-boot");
  var url = tag.getAttribute("data-url");
  var key = "devreload-reloaded-for";
  var last = null;
  var delay = 100;
  var failingSince = 0;
  var source = null;
  var channel = window.BroadcastChannel ? new BroadcastChannel("devreload " + url) : null;
  // The <head> as the server made it (the tag ends the body: the head is whole), before
  // any stylesheet swap changes it.
  var servedHead = document.head ? document.head.innerHTML : null;

  function reload() {
    if (source) {
      source.close();
    }
    location.reload();
  }

  function runsScripts(doc) {
    return Array.prototype.some.call(doc.scripts, function (script) {
      return script !== tag;
    });
  }

  // After a restart, the new page's body in place of the old one: no navigation, no
  // stylesheet fetched again, the stream kept. Not for a changed image or other static
  // file ("reload"): a swapped-in body takes its images from the browser's cache, where a
  // reload asks for them again. The fetched page has no tag (only a page navigated to gets
  // one): this one moves into the new body, now for ``newBoot``. Anything else (another
  // head, a script of the page's own, an error, a redirect) is a full reload.
  function refresh(newBoot) {
    if (servedHead === null || runsScripts(document)) {
      reload();
      return;
    }
    fetch(location.href, { cache: "no-store", credentials: "same-origin" })
      .then(function (response) {
        var type = response.headers.get("Content-Type") || "";
        if (!response.ok || response.redirected || type.indexOf("text/html") !== 0) {
          throw new Error("not a page to swap in");
        }
        return response.text();
      })
      .then(function (text) {
        var doc = new DOMParser().parseFromString(text, "text/html");
        if (doc.head.innerHTML !== servedHead || runsScripts(doc)) {
          throw new Error("not the same page");
        }
        var x = window.scrollX;
        var y = window.scrollY;
        var body = document.adoptNode(doc.body);
        body.appendChild(tag);
        document.body.replaceWith(body);
        window.scrollTo(x, y);
        boot = newBoot;
        tag.setAttribute("data-boot", boot);
        tag.setAttribute("data-connected", boot);
      })
      .catch(reload);
  }

  function swapCss(path) {
    var name = path.split("/").pop();
    var links = [];
    var matching = [];
    document.querySelectorAll("link[rel~=stylesheet]").forEach(function (link) {
      links.push(link);
      if (new URL(link.href, location.href).pathname.split("/").pop() === name) {
        matching.push(link);
      }
    });
    (matching.length ? matching : links).forEach(function (old) {
      var fresh = new URL(old.href, location.href);
      var link = old.cloneNode();
      fresh.searchParams.set("devreload", Date.now());
      link.href = fresh.href;
      link.onload = link.onerror = function () {
        old.remove();
      };
      old.after(link);
    });
  }

  function handle(event, data) {
    if (event === "hello") {
      tag.setAttribute("data-connected", data.boot);
      if (data.boot === boot || sessionStorage.getItem(key) === data.boot) {
        return;
      }
      sessionStorage.setItem(key, data.boot);
      refresh(data.boot);
    } else if (event === "css") {
      swapCss(data.path);
    } else {
      reload();
    }
  }

  function share(event, data) {
    if (event === "hello") {
      last = data;
    }
    if (channel) {
      channel.postMessage({ event: event, data: data });
    }
    handle(event, data);
  }

  function connect(done) {
    source = new EventSource(url);
    // The worker is stopping for a restart: ask again at once. The request waits in the
    // listening socket's queue and the next worker answers it as soon as it serves.
    source.addEventListener("reloading", function () {
      source.close();
      connect(done);
    });
    ["hello", "css", "reload", "broken"].forEach(function (name) {
      source.addEventListener(name, function (e) {
        if (name === "hello") {
          delay = 100;
          failingSince = 0;
        }
        share(name, e.data ? JSON.parse(e.data) : {});
      });
    });
    source.onerror = function () {
      source.close();
      var now = Date.now();
      if (!failingSince) {
        failingSince = now;
      }
      if (now - failingSince > 120000) {
        done();
        return;
      }
      setTimeout(function () {
        connect(done);
      }, delay);
      delay = Math.min(delay * 2, 5000);
    };
  }

  // One tab holds the stream and tells the others: a browser allows only six
  // connections per host, and every open tab would otherwise keep one.
  if (channel && navigator.locks) {
    channel.onmessage = function (e) {
      if (e.data.event !== "ask") {
        handle(e.data.event, e.data.data);
      } else if (last) {
        channel.postMessage({ event: "hello", data: last });
      }
    };
    navigator.locks.request("devreload " + url, function () {
      return new Promise(function (resolve) {
        connect(resolve);
      });
    });
    channel.postMessage({ event: "ask" });
  } else {
    connect(function () {});
  }
})();
//# sourceURL=devreload/livereload.js
