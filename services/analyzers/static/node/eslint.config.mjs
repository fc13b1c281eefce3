// ESLint flat config that Assay's static analyzer passes with --config to lint a generated app's JavaScript.
// Core rules catch code that runs text as code, loose equality and names that do not exist; two maintained security
// rule sets run beside Assay's own semgrep rules: eslint-plugin-no-unsanitized (Mozilla: HTML sinks such as innerHTML
// and insertAdjacentHTML given non-constant markup) and eslint-plugin-security (Node.js: child_process, eval of
// expressions, unsafe regular expressions, timing attacks). Left out on evidence: security/detect-object-injection and
// security/detect-non-literal-regexp flag nearly every obj[key] and new RegExp(x), flaw or not.
// Their severity and CWE are in shared/results/rule_table.py.
import globals from "globals";
import noUnsanitized from "eslint-plugin-no-unsanitized";
import security from "eslint-plugin-security";

export default [
  {
    files: ["**/*.js", "**/*.mjs", "**/*.cjs", "**/*.jsx"],
    languageOptions: {
      ecmaVersion: "latest",
      // generated frontends mix classic scripts and ES modules in .js files; module parsing reads both
      // (only sloppy-mode oddities such as `with` fail), while script parsing rejects every import/export
      sourceType: "module",
      parserOptions: { ecmaFeatures: { jsx: true } },
      globals: { ...globals.browser },
    },
    linterOptions: { reportUnusedDisableDirectives: "off" },
    plugins: { "no-unsanitized": noUnsanitized, security },
    rules: {
      "no-unsanitized/method": "error",
      "no-unsanitized/property": "error",
      "security/detect-buffer-noassert": "warn",
      "security/detect-child-process": "warn",
      "security/detect-disable-mustache-escape": "error",
      "security/detect-eval-with-expression": "error",
      "security/detect-new-buffer": "warn",
      "security/detect-no-csrf-before-method-override": "warn",
      "security/detect-non-literal-fs-filename": "warn",
      "security/detect-non-literal-require": "warn",
      "security/detect-possible-timing-attacks": "warn",
      "security/detect-pseudoRandomBytes": "warn",
      "security/detect-unsafe-regex": "warn",
      "security/detect-bidi-characters": "error",
      "no-eval": "error",
      "no-implied-eval": "error",
      "no-new-func": "error",
      "no-script-url": "error",
      "no-undef": "error",
      "no-unused-vars": ["warn", { args: "none" }],
      "eqeqeq": ["warn", "always"],
      "no-alert": "warn",
      "no-unreachable": "error",
      "no-dupe-keys": "error",
      "no-redeclare": "error",
    },
  },
  {
    files: ["**/*.cjs"],
    languageOptions: { sourceType: "commonjs", globals: { ...globals.node } },
  },
];
