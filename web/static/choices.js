// A choice that depends on another (a user's zone on their role, a new zone's parent on its
// kind): options of a select with data-follows="ID" that carry data-when="a b" show only while
// the select ID has one of those values. The server decides the lists and refuses any other
// pair; without JavaScript every option shows and a wrong pair is refused with its reason.
(function () {
  "use strict";
  for (const select of document.querySelectorAll("select[data-follows]")) {
    const leader = document.getElementById(select.dataset.follows);
    if (!leader) continue;
    const update = () => {
      let first = null;
      let keep = false;
      for (const option of select.options) {
        const when = option.dataset.when;
        const fits = when === undefined || when.split(" ").includes(leader.value);
        option.hidden = !fits;
        option.disabled = !fits;
        if (fits && first === null) first = option;
        if (fits && option.selected) keep = true;
      }
      if (!keep && first !== null) first.selected = true;
    };
    leader.addEventListener("change", update);
    update();
  }
})();
