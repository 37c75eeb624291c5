const [a, b] = require('fs').readFileSync(0, 'utf8').trim().split(/\s+/).map(Number);
const parts = null;
console.log(parts.length + a + b);
