// sphinx-book-theme and pydata-sphinx-theme each put a primary (contents) and a secondary (on this page)
// sidebar toggle into every page, and both themes' scripts bind only the first of each in the document:
// pydata-sphinx-theme's, which sphinx-book-theme hides. A click on any other toggle is passed to that first
// one, whose handlers open the sidebar as a dialog on narrow screens and collapse it on wide ones.
document.addEventListener("DOMContentLoaded", () => {
  for (const kind of ["primary", "secondary"]) {
    const [bound, ...others] = document.querySelectorAll(`.${kind}-toggle`);
    for (const toggle of others) {
      toggle.addEventListener("click", (event) => {
        event.preventDefault();
        event.stopPropagation();
        bound.click();
      });
    }
  }
});
