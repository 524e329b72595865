// Runs one js-ipfs daemon for tests and stops it when this process's standard input closes
// (that is, when the test process that started it exits, however it exits), then deletes the
// node's work directory.
//   usage: node launch.mjs INSTALL_DIR WORK_DIR
// WORK_DIR holds config.json; the repository is created in WORK_DIR/repo. The daemon's output
// is passed through; "Daemon is ready" marks readiness.
import { spawn } from 'node:child_process'
import { rmSync } from 'node:fs'
import { join } from 'node:path'

const [installDir, workDir] = process.argv.slice(2)
const repoDir = join(workDir, 'repo')
const configFile = join(workDir, 'config.json')
const daemon = spawn(process.execPath, [
  join(installDir, 'node_modules', 'ipfs', 'src', 'cli.js'),
  'daemon', '--init-config', configFile, '--enable-preload=false'
], {
  env: { ...process.env, IPFS_PATH: repoDir, NO_UPDATE_NOTIFIER: '1' },
  stdio: ['ignore', 'inherit', 'inherit']
})

let stopping = false
function stop () {
  if (stopping) return
  stopping = true
  daemon.kill('SIGTERM')
  // A daemon that does not stop in 5 s is killed.
  setTimeout(() => daemon.kill('SIGKILL'), 5000).unref()
}
daemon.on('exit', (code) => {
  rmSync(workDir, { recursive: true, force: true })
  process.exit(code ?? 0)
})
process.stdin.on('end', stop)
process.stdin.on('error', stop)
process.stdin.on('close', stop)
process.stdin.resume()
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
