// Click-to-seek for the session page (a file, not inline: the CSP allows no inline script).
// Each turn's button carries its offset into the recording (data-seek, seconds); pressing it
// moves the player there and plays. The turn being played is marked for the eye.
(function () {
  "use strict";
  var player = document.getElementById("player");
  if (!player) {
    return;
  }
  var buttons = Array.prototype.slice.call(document.querySelectorAll("button.seek[data-seek]"));

  buttons.forEach(function (button) {
    button.addEventListener("click", function () {
      var at = parseFloat(button.getAttribute("data-seek"));
      if (!isFinite(at)) {
        return;
      }
      player.currentTime = at;
      var playing = player.play();
      if (playing && playing.catch) {
        playing.catch(function () {}); // refused or interrupted: the seek still happened
      }
    });
  });

  var marked = null;
  player.addEventListener("timeupdate", function () {
    var now = player.currentTime;
    var current = null;
    buttons.forEach(function (button) {
      if (parseFloat(button.getAttribute("data-seek")) <= now + 0.05) {
        current = button.closest("li");
      }
    });
    if (current !== marked) {
      if (marked) {
        marked.classList.remove("playing");
      }
      if (current) {
        current.classList.add("playing");
      }
      marked = current;
    }
  });
})();
