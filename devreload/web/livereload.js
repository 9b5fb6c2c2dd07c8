// devreload's live-reload client, injected into HTML pages by the LiveReload wrappers.
// The tag that carries it says which worker made the page (data-boot) and where the
// event stream is (data-url). A page made by an older worker reloads once, as soon as
// the new worker answers; a changed stylesheet is swapped in place. A worker that stops
// for a restart says "reloading" first, and the page asks the next one at once.
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

  function reload() {
    if (source) {
      source.close();
    }
    location.reload();
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
      reload();
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
