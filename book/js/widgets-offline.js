// Loaded before require.js and embed-amd.js on the pages that show widgets (nb_ipywidgets_js in _config.yml).

// require.js takes a global `require` as its configuration. The widget manager finds its fonts next to its
// modules' URLs, which these paths put in _static/, where the book copies the manager's dist/ folder.
var require = (() => {
  const static_ = new URL(".", document.currentScript.src).href;  // .../_static/, where this file is
  return {
    paths: {
      "@jupyter-widgets/html-manager": static_ + "html-manager",  // -> _static/html-manager.js
      "@jupyter-widgets/html-manager/dist": static_.slice(0, -1),  // -> _static/libembed-amd.js
      anywidget: static_ + "anywidget",  // the explorers' runtime (npm's anywidget), copied by book/_ext/course_book.py
    },
  };
})();

// ipywidgets typesets widget labels with MathJax 2's MathJax.Hub.Queue, but the book loads MathJax 3, which
// replaces window.MathJax when its deferred script runs: that is before DOMContentLoaded, when the views render.
document.addEventListener("DOMContentLoaded", () => {
  if (!window.MathJax?.startup) return;  // a page without formulas loads no MathJax
  window.MathJax.Hub = {
    Queue: ([, , element]) => MathJax.startup.promise.then(() => MathJax.typesetPromise([element])),
  };
});
