// Render the math that pymdownx.arithmatex (generic mode) leaves in the page:
// inline \( ... \) in <span class="arithmatex">, display \[ ... \] in <div class="arithmatex">.
// Only those elements are touched, so a "$" in code or prose is never taken for math.
// KaTeX is vendored (docs/assets/katex), so this works with no network access.
document$.subscribe(({ body }) => {
  body.querySelectorAll(".arithmatex").forEach((el) => {
    renderMathInElement(el, {
      delimiters: [
        { left: "\\(", right: "\\)", display: false },
        { left: "\\[", right: "\\]", display: true },
      ],
      throwOnError: false,
    });
  });
});
