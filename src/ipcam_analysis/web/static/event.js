// Event page: the checkboxes show or hide each label's boxes over the picture.
// Without JavaScript every box stays visible and the checkboxes stay hidden.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const toggles = document.querySelector(".toggles");
  if (!toggles) return;
  toggles.hidden = false;
  toggles.addEventListener("change", (event) => {
    const layer = event.target.dataset.layer;
    const boxes = document.querySelector(`.viewer svg[data-layer="${layer}"]`);
    if (boxes) boxes.classList.toggle("off", !event.target.checked);
  });
});
