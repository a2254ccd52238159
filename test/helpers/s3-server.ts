export { LocalS3 } from '../../scripts/local-s3';
