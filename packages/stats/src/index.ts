export * from './compare.js';
export * from './health.js';
export {
  chiSquareSf,
  normalCdf,
  normalQuantile,
  normalSf,
  studentTCdf,
  studentTSf,
  studentTTwoSided,
  studentTUpperQuantile,
} from './distributions.js';
