import { registerMessages } from '../i18n';

registerMessages({
  'zh-CN': {
    'prefetch.progress': '加载图像 {loaded}/{total}',
    'prefetch.failed': '{count} 幅图像加载失败',
  },
  en: {
    'prefetch.progress': 'Loading images {loaded}/{total}',
    'prefetch.failed': '{count} images failed to load',
  },
});
