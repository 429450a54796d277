#!/usr/bin/env node
// Plain JavaScript that any Node.js can parse: the version check must run before anything
// imports node:sqlite, which older releases do not have (or only behind a flag).
const REQUIRED = [22, 13]
const running = process.versions.node.split('.').map(Number)
if (running[0] < REQUIRED[0] || (running[0] === REQUIRED[0] && running[1] < REQUIRED[1])) {
  process.stderr.write(
    'countersign needs Node.js ' + REQUIRED.join('.') + ' or newer (it uses the built-in node:sqlite); this is Node.js ' +
      process.versions.node + '.\nInstall the current LTS from https://nodejs.org/ (or: nvm install --lts) and run it again.\n',
  )
  process.exit(2)
}

import('../dist/cli/main.js').then(function (cli) {
  return cli.main(process.argv).then(
    function (code) { process.exitCode = code },
    function (error) {
      console.error(error instanceof Error ? error.message : String(error))
      process.exitCode = 1
    },
  )
}, function (error) {
  console.error('countersign: cannot load the CLI (' + (error instanceof Error ? error.message : String(error)) + ')')
  process.exitCode = 1
})
