// Fails the whole run at once, with the fix, when the Redis binaries the harness needs are missing.
const { execFileSync } = require('node:child_process');

module.exports = async () => {
  for (const bin of ['redis-server', 'redis-cli']) {
    try {
      execFileSync(bin, ['--version'], { stdio: 'ignore' });
    } catch {
      throw new Error(
        `${bin} was not found on PATH. The tests start their own Redis processes on free ports.\n` +
          `Install it: sudo apt-get install -y redis-server   (macOS: brew install redis)`,
      );
    }
  }
};
